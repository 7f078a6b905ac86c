"""The machine interface: XEP-0323 readouts, XEP-0325 control, XEP-0326 concentrator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from slixmpp import JID, ClientXMPP
from slixmpp.xmlstream.handler import CoroutineCallback

from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.model import FieldValue
from hubd.core.node import Node
from hubd.core.remote_settings import remote_node_key
from hubd.core.remote_source import RemoteNode, RemoteSource, RemoteSources
from hubd.events.store import Store
from hubd.xmpp.concentrator import Concentrator
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.control import ControlService
from hubd.xmpp.errors import ErrorCondition
from hubd.xmpp.sensordata import ReadoutService
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_message, send_result

if TYPE_CHECKING:  # imported where remotes: is configured (memory of a hub without)
    from hubd.xmpp.concentrator_remote import RemoteBrowse
    from hubd.xmpp.remote_control import RemoteControl
    from hubd.xmpp.remote_readout import RemoteReader


class IotServices:
    """Registers the IoT protocol handlers on one slixmpp client."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        hub: Hub,
        access: AccessPolicy,
        history: Store | None = None,
        remotes: RemoteSources | None = None,
        loop_guard: Callable[[str], str | None] | None = None,
    ) -> None:
        # Other hubs (remotes:): browsed and read through this one, under its identity.
        reader: RemoteReader | None = None
        remote_control: RemoteControl | None = None
        browse: RemoteBrowse | None = None
        if remotes:
            # Imported only here: a hub without remotes: does not pay their modules.
            from hubd.xmpp.concentrator_remote import RemoteBrowse
            from hubd.xmpp.remote_control import RemoteControl
            from hubd.xmpp.remote_readout import RemoteReader

            reader = RemoteReader(xmpp, remotes)
            remote_control = RemoteControl(xmpp, remotes, access)
            browse = RemoteBrowse(remotes, access)
        self.readout = ReadoutService(xmpp, hub, access, history, reader)
        self.control = ControlService(xmpp, hub, access, remote_control)
        self.concentrator = Concentrator(hub, access, browse)
        xmpp.register_handler(
            CoroutineCallback(
                "iot concentrator",
                PayloadMatcher("iq", NS_CONCENTRATORS, types=("get", "set")),
                self._on_concentrator,
            )
        )
        xmpp.plugin["xep_0030"].add_feature(NS_CONCENTRATORS)
        self.xmpp = xmpp
        #: Why a requester's tree requests are refused (it is a remote listing this hub).
        self.loop_guard = loop_guard
        # Each remote's nodes as last shown: tree events say what changed since.
        self._remote_seen: dict[str, dict[str, RemoteNode]] = {}
        hub.add_listener(self)
        hub.add_tree_listener(self)
        # XEP-0326 data-source subscriptions last only while both sides are present.
        xmpp.add_event_handler(
            "presence_unavailable", lambda p: self.concentrator.forget(str(p["from"]))
        )
        xmpp.add_event_handler("session_start", lambda _e: self.concentrator.forget())

    async def _on_concentrator(self, iq: Any) -> None:
        element = payload(iq, "{" + NS_CONCENTRATORS + "}")
        assert element is not None
        if self.loop_guard is not None and (loop := self.loop_guard(str(iq["from"]))):
            send_error(iq, ErrorCondition("cancel", "conflict", loop))
            return
        await self.concentrator.access.ensure(str(iq["from"]))  # XEP-0324
        answer = self.concentrator.handle(str(iq["from"]), element)
        if answer.error is None:
            send_result(iq, answer.payload)
        else:
            send_error(iq, answer.error, beside=answer.payload)

    def on_remote_changed(self, source: RemoteSource) -> None:
        """A remote's nodes or state changed: tell who subscribed to its data source here."""
        from hubd.xmpp.remote_tree_events import remote_tree_element, tree_changes

        shown = {node.node_id: node for node in source.nodes()}
        before = self._remote_seen.get(source.id, {})
        self._remote_seen[source.id] = shown
        subscribers = self.concentrator.subscribers_of(source.id)
        if not subscribers:
            return
        for kind, node in tree_changes(before, shown):
            key = remote_node_key(source.id, node.node_id)
            for requester, sub in subscribers:
                if kind in sub.events and self.concentrator.access.allows(
                    requester, Role.READER, key
                ):
                    element = remote_tree_element(kind, node, source.id, sub)
                    send_message(self.xmpp, JID(requester), element)

    def _send_tree_event(self, kind: str, node: Node) -> None:
        for requester, element in self.concentrator.tree_event(kind, node):
            send_message(self.xmpp, JID(requester), element)

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """Values are events' business, not the tree's."""

    def on_state(self, node: Node) -> None:
        """A node's state changed: tell data-source subscribers."""
        self._send_tree_event("nodeStatusChanged", node)

    def on_node_added(self, node: Node) -> None:
        """A reload added a node."""
        self._send_tree_event("nodeAdded", node)

    def on_node_removed(self, node: Node) -> None:
        """A reload removed a node."""
        self._send_tree_event("nodeRemoved", node)

    async def close(self) -> None:
        """Stop the readouts in flight."""
        await self.readout.close()
