"""The hub's XMPP account: one slixmpp client, its plugins, presence and discovery.

Certificates are always verified (an extra CA comes from ``xmpp.ca_file``);
hubd never authenticates over an unencrypted stream (slixmpp refuses SCRAM and
PLAIN without TLS by default, and plaintext connections are disabled).
Presence subscriptions are approved for JIDs in the access lists and refused
for everyone else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.stanza import Presence

from hubd.core.access import AccessPolicy, Role
from hubd.core.config import RoomSettings, XmppSettings
from hubd.core.driver import utc_now
from hubd.core.hub import Hub
from hubd.core.model import FieldValue
from hubd.core.node import Node
from hubd.core.omemo_settings import OmemoSettings
from hubd.core.remote_nodes import RemoteNodeTable
from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteSources
from hubd.core.settings import DiscoverySettings, UploadSettings
from hubd.errors import OmemoUnavailable
from hubd.events.engine import EventEngine
from hubd.events.subscriptions import SubscriptionSpec
from hubd.people.commands import ChatCommands
from hubd.people.history_commands import register_history
from hubd.people.watch import ROOM, register_watch
from hubd.xmpp.ack_answers import AckAnswers
from hubd.xmpp.acks import SM_WINDOW
from hubd.xmpp.adhoc import AdhocService
from hubd.xmpp.adhoc_plot import enable_plot
from hubd.xmpp.chat import ChatService
from hubd.xmpp.connection import ConnectionSupervisor
from hubd.xmpp.direct_send import message_neutral
from hubd.xmpp.disco_tree import DiscoTree
from hubd.xmpp.events import EventService
from hubd.xmpp.iot import IotServices
from hubd.xmpp.presence_requests import PresenceRequests
from hubd.xmpp.vcard import VCardPublisher

# The optional features' modules are imported where the configuration turns them
# on (remotes:, rooms:, discovery:, provisioning, a shared chart): a hub without
# them does not pay their memory.  tests/test_lazy_features.py keeps it so.
if TYPE_CHECKING:
    from hubd.core.ownership import Ownership
    from hubd.people.remote_commands import RemoteDeviceCommands
    from hubd.xmpp.muc import MucService
    from hubd.xmpp.omemo import OmemoService  # the omemo extra may be absent
    from hubd.xmpp.provisioning import ProvisioningService
    from hubd.xmpp.remote_events import RemoteEvents
    from hubd.xmpp.remotes import RemoteHubs
    from hubd.xmpp.thing_registry import ThingRegistryClient
    from hubd.xmpp.upload import HttpUpload

_LOGGER = logging.getLogger(__name__)

ROSTER_TIMEOUT = 10.0
SETTLE_TIMEOUT = 2.0

DEFAULT_RESOURCE = "hubd"
CAPS_NODE = "https://github.com/hubd/hubd"

# Plugins whose features hubd really implements; disco#info lists exactly these.
# xep_0004 and xep_0050 carry the ad-hoc commands (hubd/xmpp/adhoc.py).
PLUGINS = ("xep_0030", "xep_0115", "xep_0198", "xep_0199", "xep_0004", "xep_0050")


class HubClient:
    """Connects the hub to XMPP as one account."""

    def __init__(
        self,
        settings: XmppSettings,
        password: str,
        hub: Hub,
        access: AccessPolicy,
        *,
        events: EventEngine | None = None,
        rooms: Sequence[RoomSettings] = (),
        uploads: UploadSettings | None = None,
        discovery: DiscoverySettings | None = None,
        state_dir: Path | None = None,
        ownership: Ownership | None = None,
        omemo: OmemoSettings | None = None,
        remotes: Sequence[RemoteSettings] = (),
        remote_nodes: RemoteNodeTable | None = None,
    ) -> None:
        jid = JID(settings.jid)
        if not jid.resource:
            jid.resource = DEFAULT_RESOURCE
        self.hub = hub
        self.access = access
        xmpp = ClientXMPP(jid, password)
        xmpp.enable_plaintext = False
        # Direct TLS only on the port that speaks it; elsewhere STARTTLS, so an
        # attempt per connection is not wasted on a handshake that cannot work.
        xmpp.enable_direct_tls = settings.port == 5223
        if settings.ca_file is not None:
            xmpp.ca_certs = settings.ca_file
        xmpp.auto_authorize = None  # decided here, by the access lists
        xmpp.auto_subscribe = False
        for plugin in PLUGINS:
            # slixmpp asks for an ack every 5 stanzas by default; hubd paces its own.
            xmpp.register_plugin(plugin, {"window": SM_WINDOW} if plugin == "xep_0198" else None)
        # The server's <r/> is answered in front of the hub's next write (one write less
        # on a request's way to its answer), not by a write of its own.
        self.ack_answers = AckAnswers(xmpp)
        xmpp.plugin["xep_0030"].del_identity(category="client", itype="bot")
        xmpp.plugin["xep_0030"].add_identity(category="client", itype="bot", name="hubd")
        xmpp.plugin["xep_0115"].caps_node = CAPS_NODE
        # xep_0115 adds caps to presence with an *async* outgoing filter, which
        # slixmpp runs as a task and a wait for every stanza sent (each event
        # message too: ~3 loop turns each).  The same, synchronous, from the
        # version string computed once per session.
        caps_plugin: Any = xmpp.plugin["xep_0115"]
        xmpp.del_filter("out", caps_plugin._filter_add_caps)
        xmpp.add_filter("out", self._add_caps)
        self._caps_ver: str | None = None
        xmpp.add_event_handler("session_start", self._on_session_start)
        self.xmpp = xmpp
        # Other hubs as data sources of this one (remotes:), browsed through the concentrator.
        self.remotes = RemoteSources(remotes)
        self.provisioning: ProvisioningService | None = None
        if access.provisioning is not None:
            from hubd.xmpp.provisioning import ProvisioningService

            self.provisioning = ProvisioningService(
                xmpp,
                access,
                access.provisioning,
                self.remotes,
                lambda: {node.source for node in hub.nodes.values()},
            )
        self.remote_hubs: RemoteHubs | None = None
        if remotes:
            from hubd.xmpp.remotes import RemoteHubs

            self.remote_hubs = RemoteHubs(xmpp, self.remotes)
        self.iot = IotServices(
            xmpp,
            hub,
            access,
            None if events is None else events.store,
            self.remotes,
            None if self.remote_hubs is None else self.remote_hubs.loop_refusal,
        )
        if self.remote_hubs is not None:
            self.remote_hubs.listeners.append(self.iot.on_remote_changed)
            self.remote_hubs.on_reach_changed = self.refresh_presence
            # A remote silent to a readout or a control goes offline until it answers again.
            for path in (self.iot.readout.remote, self.iot.control.remote):
                if path is not None:
                    path.on_silent = self.remote_hubs.not_answering
        self.events = None if events is None else EventService(xmpp, hub, access, events)
        self.remote_events = self._remote_events(remote_nodes)
        # People: chat, ad-hoc and group-chat commands share one command layer
        # and one access policy.  XEP-0045 is loaded only with rooms configured,
        # so disco#info never claims group chat the hub does not use.
        self.commands = ChatCommands(hub, access, remote=self._remote_commands(access))
        self.uploads = _UploadOnFirstShare(
            xmpp, (uploads or UploadSettings()).service, settings.ca_file
        )
        if events is not None:
            on_remote = None if self.remote_events is None else self.remote_events.ensure
            register_watch(self.commands, events, on_remote)
            register_history(self.commands, events.store, self.uploads)
        self.muc: MucService | None = None
        if rooms:
            from hubd.xmpp.muc import MucService

            xmpp.register_plugin("xep_0045")
            self.muc = MucService(xmpp, self.commands, access, rooms)
        self.omemo: OmemoService | None = None
        if omemo is not None and omemo.enabled:
            assert state_dir is not None
            self.omemo = self._start_omemo(state_dir)
        self.chat = ChatService(
            xmpp,
            self.commands,
            access,
            ignore=self.muc.is_room if self.muc else _nobody,
            omemo=self.omemo,
            require_encryption=omemo is not None and omemo.require,
        )
        if self.events is not None:
            self.events.omemo = self.omemo
        self.adhoc = AdhocService(xmpp, self.commands, access)
        self.presence_requests = PresenceRequests(xmpp, access, self.commands, self.provisioning)
        # Service discovery of the tree (XEP-0030) and the vCard people see.
        self.disco_tree = DiscoTree(xmpp, hub, access, events=events is not None)
        name = str(discovery.meta.get("NAME", "hubd")) if discovery is not None else "hubd"
        self.vcard = VCardPublisher(xmpp, hub, name)
        self.registry: ThingRegistryClient | None = None
        if discovery is not None:
            assert state_dir is not None
            assert ownership is not None
            from hubd.xmpp.thing_registry import ThingRegistryClient

            self.registry = ThingRegistryClient(
                xmpp, access, discovery, state_dir, ownership, self.commands
            )
            self.presence_requests.friends.append(self._is_registry)
        if self.remote_events is not None:
            # A remote follows this hub's presence to hold the events it sends here meanwhile.
            self.presence_requests.friends.append(lambda jid: self.remotes.by_bare(jid) is not None)
        self.rooms = tuple(rooms)
        self.engine = events
        if events is not None:
            self.adhoc.enable_watch()
            enable_plot(self.adhoc, self.chat.send_link)
        if self.muc is not None and self.events is not None:
            muc, service = self.muc, self.events
            service.attach_rooms(lambda jid: muc.is_room(JID(jid)), lambda jid: jid in muc.joined)
            muc.on_joined.append(service.engine.request_flush)
        # Keepalive pings every 15 s: a dead link is noticed within 30 s (connection.py).
        self.connection = ConnectionSupervisor(xmpp, host=settings.server, port=settings.port)
        if self.events is not None:
            self.events.acks.on_overdue.append(self.connection.cut_dead_link)
        hub.add_listener(self)

    def _remote_events(self, table: RemoteNodeTable | None) -> RemoteEvents | None:
        """Subscriptions on the remotes' nodes, with events and remotes both configured."""
        if self.events is None or self.remote_hubs is None or table is None:
            return None
        from hubd.xmpp.remote_events import RemoteEvents

        remote = RemoteEvents(self.xmpp, self.remotes, table, self.events.engine)
        remote.reader = self.iot.readout.remote  # req='true': current values from the remote
        self.events.remote = remote
        self.remote_hubs.listeners.append(remote.on_remote_changed)
        return remote

    def _remote_commands(self, access: AccessPolicy) -> RemoteDeviceCommands | None:
        """Chat on the remotes' devices (garage/door), through the IoT services' remote paths."""
        reader, control = self.iot.readout.remote, self.iot.control.remote
        if reader is None or control is None:
            return None
        from hubd.people.remote_commands import RemoteDeviceCommands
        from hubd.xmpp.remote_people import RemoteDevicesOverXmpp

        devices = RemoteDevicesOverXmpp(reader, control)
        return RemoteDeviceCommands(self.remotes, access, devices, utc_now)

    def _start_omemo(self, state_dir: Path) -> OmemoService:
        # Imported here: slixmpp-omemo is an optional extra (AGPL-3.0).
        from hubd.xmpp.omemo import OmemoService, TrustPolicy
        from hubd.xmpp.omemo_commands import OmemoCommands
        from hubd.xmpp.omemo_contacts import SubscribeBack

        def listed(bare: str) -> bool:
            return self.access.best_role(bare) >= Role.READER

        def announce(text: str) -> None:
            for owner in self.access.owner_jids():
                self.chat.send_text(owner, text)

        service = OmemoService(self.xmpp, state_dir, TrustPolicy(listed, announce))
        SubscribeBack(self.xmpp, listed)
        OmemoCommands(service, self.access).register(self.commands)
        return service

    async def run(self) -> None:
        """Stay connected until cancelled (raises XmppAuthError when refused)."""
        if self.omemo is not None:
            try:
                await self.omemo.open()
            except OmemoUnavailable as err:
                _LOGGER.error("OMEMO off: %s", err)
        await self._watch_for_rooms()
        # The helpers live exactly as long as this task: cancelled and awaited on the way out.
        helpers = [asyncio.create_task(self.vcard.run(), name="vcard")]
        if self.registry is not None:
            helpers.append(asyncio.create_task(self.registry.run(), name="thing registry"))
        if self.remote_hubs is not None:
            helpers.append(asyncio.create_task(self.remote_hubs.run(), name="remote hubs"))
        if self.remote_events is not None:
            helpers.append(asyncio.create_task(self.remote_events.run(), name="remote events"))
        for helper in helpers:
            helper.add_done_callback(_report_crash)
        try:
            await self.connection.run()
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _is_registry(self, bare: str) -> bool:
        return self.registry is not None and self.registry.is_registry(JID(bare))

    async def close(self) -> None:
        """Say goodbye: presence unavailable, then close the stream."""
        if self.xmpp.transport is not None and self.connection.connected.is_set():
            self.xmpp.send_presence(ptype="unavailable", pstatus="hubd is stopping")
            if self.events is not None and not await self.events.acks.settle(SETTLE_TIMEOUT):
                # Those events stay in the outbox and go again after the restart.
                _LOGGER.info("the server did not acknowledge the last stanzas before the stop")
        await self.iot.close()
        await self.chat.close()
        if self.omemo is not None:
            await self.omemo.close()
        if self.muc is not None:
            await self.muc.close()
        await self.connection.close()

    async def _watch_for_rooms(self) -> None:
        """Subscribe each room to the events of its devices (``rooms[].devices``)."""
        if self.engine is None:
            return
        for room in self.rooms:
            bare = JID(room.jid).bare
            await self.engine.unsubscribe(bare, None, ROOM)  # the list may have changed
            for node_id in room.devices:
                if node_id in self.hub.nodes:
                    spec = SubscriptionSpec(
                        subscriber=bare, target=bare, node_id=node_id, seqnr=0, channel=ROOM
                    )
                    await self.engine.subscribe(spec)

    def status_line(self) -> str:
        """The presence status people see: ``12 devices, 1 offline``."""
        total, offline = self.hub.counts()
        text = f"{total} device{'s' if total != 1 else ''}"
        return f"{text}, {offline} offline" if offline else text

    @message_neutral
    def _add_caps(self, stanza: Any) -> Any:
        """Outgoing filter: XEP-0115 caps on available presence, nothing else touched."""
        caps = self.xmpp.plugin["xep_0115"]
        if (
            self._caps_ver
            and caps.broadcast
            and isinstance(stanza, Presence)
            and stanza["type"] in ("available", "chat", "away", "dnd", "xa")
        ):
            stanza["caps"]["node"] = caps.caps_node
            stanza["caps"]["hash"] = caps.hash
            stanza["caps"]["ver"] = self._caps_ver
        return stanza

    def send_presence(self) -> None:
        """Broadcast availability with the status line (caps are added by xep_0115)."""
        self.xmpp.send_presence(pstatus=self.status_line())

    async def _on_session_start(self, _event: Any) -> None:
        caps = self.xmpp.plugin["xep_0115"]
        await caps.update_caps(broadcast=False)
        self._caps_ver = await caps.get_verstring(self.xmpp.boundjid)
        self.send_presence()
        try:
            await self.xmpp.get_roster(timeout=ROSTER_TIMEOUT)
        except IqTimeout:  # the link may have dropped: the next session asks again
            _LOGGER.info("the server sent no roster within %g s", ROSTER_TIMEOUT)
        except IqError as err:  # a roster failure must not end the session
            _LOGGER.info("the server refused the roster: %s", err.condition)

    # HubListener
    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """Values are delivered by the event subscriptions, not here."""

    def on_state(self, node: Node) -> None:
        """Keep the presence status line current."""
        self.refresh_presence()

    def refresh_presence(self) -> None:
        """Send the status line again when connected (node states or the node table changed)."""
        if self.connection.connected.is_set():
            self.send_presence()


class _UploadOnFirstShare:
    """hubd.people's FileSharing: the HTTP upload client (http.client, its module)
    is built when the first chart is shared, not for every hub that never plots."""

    __slots__ = ("_args", "upload")

    def __init__(self, xmpp: ClientXMPP, service: str | None, ca_file: Path | None) -> None:
        self._args = (xmpp, service, ca_file)
        self.upload: HttpUpload | None = None

    async def share(self, data: bytes, filename: str, content_type: str) -> str:
        """Upload ``data`` (XEP-0363) and return the URL to fetch it."""
        if self.upload is None:
            from hubd.xmpp.upload import HttpUpload

            self.upload = HttpUpload(*self._args)
        return await self.upload.share(data, filename, content_type)


def _report_crash(task: asyncio.Task[None]) -> None:
    """A helper that ends by itself has a bug: say so (the rest of hubd goes on)."""
    if not task.cancelled() and task.exception() is not None:
        _LOGGER.error("%s stopped: %r", task.get_name(), task.exception())


def _nobody(_jid: JID) -> bool:
    """No JID is a group-chat room (no rooms configured)."""
    return False
