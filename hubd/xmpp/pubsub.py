"""The hub's publisher: device values to a pubsub node, so the server carries the fan-out.

Fed by the hub's value changes (a :class:`~hubd.core.hub.HubListener`, like
the IoT events path).  Per device at most one publish is in flight; changes
that arrive meanwhile only mark the device dirty, and the next publish takes
its newest values, so a burst costs one publish per device and round trip,
never a queue.

Node setup follows pubsub-profiles.md: every publish carries publish-options
(XEP-0060 §7.1.5); where the server refuses them as preconditions (or the
node does not exist and is not auto-created), the hub creates or configures
the node (§8.1.3, §8.2) and publishes again.  A refusal (``not-allowed``,
``feature-not-implemented``, ...) is one log line; hubd keeps running and
tries again with backoff.  On a service the node is ``whitelist`` and the
hub keeps its ``member`` affiliations equal to the access lists.

Restarts keep the state: nothing is deleted at start, and a stored ``iot``
item is replaced only once the device has again at least the fields it
holds.  Items others publish (the server should refuse them) are ignored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any
from xml.etree.ElementTree import Element, tostring

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.core.access import AccessPolicy
from hubd.core.audience import members, publishable
from hubd.core.backoff import Backoff
from hubd.core.config import Config
from hubd.core.hub import Hub
from hubd.core.model import FieldValue
from hubd.core.node import Node
from hubd.core.settings import PubSubSettings
from hubd.errors import PubSubRefused
from hubd.xmpp import pubsub_profiles as profiles
from hubd.xmpp import pubsub_xml as wire
from hubd.xmpp.pep_audience import PepAudience

_LOGGER = logging.getLogger(__name__)

IQ_TIMEOUT = 10.0
#: Publishes of one device in flight at once (bench/fanout.py: the server stays busy).
PIPELINE = 4
SETTLE_TIMEOUT = 2.0
# The node exists but is configured otherwise: configuring it makes the options hold.
_PRECONDITION = {"precondition-not-met", "unsupported"}


class PubSubPublisher:
    """Publishes the devices of ``config.pubsub`` and keeps the node's audience in step."""

    def __init__(self, xmpp: ClientXMPP, hub: Hub, access: AccessPolicy, config: Config) -> None:
        assert config.pubsub is not None
        self.xmpp = xmpp
        self.hub = hub
        self.access = access
        self.settings: PubSubSettings = config.pubsub
        self.devices: tuple[str, ...] = ()
        self.members: tuple[str, ...] = ()
        self.title = f"hubd {JID(config.xmpp.jid).bare}"
        self._dirty: set[str] = set()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stored: dict[str, frozenset[str]] = {}
        self._sent: dict[tuple[str, str], bytes] = {}
        self._ready = False
        self._use_options = True
        self._backoff = Backoff(base=1.0, cap=300.0)
        self._retry: asyncio.TimerHandle | None = None
        self._problem: str | None = None
        self._setting_up = asyncio.Lock()
        self._ensured: set[str] = set()  # nodes created or configured in this session
        self.pep_audience = PepAudience(xmpp, access) if self.settings.pep else None
        self.apply(config)
        hub.add_listener(self)
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("session_resumed", self._on_session_start)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.register_handler(
            Callback(
                "pubsub events from others",
                MatchXPath(f"{{jabber:client}}message/{{{wire.NS_EVENT}}}event"),
                self._on_event,
            )
        )

    @property
    def target(self) -> JID:
        """Where the nodes live: the hub's own bare JID (PEP) or the service."""
        return JID(self.xmpp.boundjid.bare if self.settings.pep else self.settings.service)

    # --- configuration ---------------------------------------------------------------

    def apply(self, config: Config) -> None:
        """Take the devices and audience of ``config`` (at start and on every reload)."""
        devices = publishable(config, self.access)
        wanted = config.pubsub.devices if config.pubsub is not None else None
        for device in sorted(set(wanted or ()) - set(devices)):
            _LOGGER.warning(
                "pubsub: not publishing %s: the node reaches people its access does not "
                "let read it",
                device,
            )
        if len(devices) != len(self.devices):
            self._ensured.clear()  # pubsub#max_items may have to grow
        removed = set(self.devices) - set(devices)
        added = set(devices) - set(self.devices)
        self.devices = devices
        new_members = members(config) if not self.settings.pep else ()
        changed_members = new_members != self.members
        self.members = new_members
        if self.pep_audience is not None:
            self.pep_audience.check()  # the roster is empty before the first session
        if not self._ready:
            return
        for device in sorted(removed):
            self._spawn(self._retract_device(device), f"pubsub retract {device}")
        if removed and "uwpx" in self.settings.profiles:
            self._spawn(self._refresh_uwpx(), "pubsub uwpx")
        if changed_members:
            self._spawn(self._sync_affiliations(), "pubsub affiliations")
        self._dirty |= added
        self._kick()

    # --- the hub's values -------------------------------------------------------------

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """A device reported values: publish them (coalesced per device)."""
        if node.id in self.devices:
            self._dirty.add(node.id)
            if self._ready and self._retry is None:
                self._start(node.id)

    def on_state(self, node: Node) -> None:
        """State changes arrive as the ``online`` value too (see :meth:`on_values`)."""

    def _kick(self) -> None:
        for device in sorted(self._dirty):
            self._start(device)

    def _start(self, device: str) -> None:
        """Publish the device's newest values, with up to :data:`PIPELINE` publishes in flight.

        Waiting for each answer before the next publish would leave the server idle for
        a round trip per item; a few in flight keep it busy, and the stream keeps them
        in order, so the last one sent is the item that stays.  Whatever changes while
        :data:`PIPELINE` are in flight is one flag, taken by the next publish.
        """
        running = self._in_flight.setdefault(device, set())
        if len(running) < PIPELINE and self._wanted(device):
            self._dirty.discard(device)
            task = self._spawn(self._publish_once(device), f"pubsub {device}")
            running.add(task)  # the tasks start (and send) in the order they are made

    async def _publish_once(self, device: str) -> None:
        try:
            await self._publish_node(self.hub.nodes[device])
        except PubSubRefused as err:
            self._dirty.add(device)
            self._refused("publish to", err)
        finally:
            running = self._in_flight.get(device, set())
            running.discard(asyncio.current_task())
            if self._retry is None:
                self._start(device)
            if not self._in_flight.get(device):
                self._in_flight.pop(device, None)

    def _wanted(self, device: str) -> bool:
        dirty = device in self._dirty and device in self.hub.nodes
        return dirty and self._ready and device in self.devices

    async def _publish_node(self, node: Node) -> None:
        if "iot" in self.settings.profiles and self._complete(node):
            item = profiles.iot_item(self.settings.node, node)
            if item is not None:
                await self._publish(item)
                self._stored.pop(node.id, None)
        if "uwpx" in self.settings.profiles:
            for item in profiles.uwpx_items(node):
                await self._publish(item)
            await self._publish_form()

    def _complete(self, node: Node) -> bool:
        """After a restart: the stored item is kept until the device has all its fields again."""
        stored = self._stored.get(node.id)
        return stored is None or stored <= set(node.cache)

    async def _publish_form(self) -> None:
        nodes = [self.hub.nodes[d] for d in self.devices if d in self.hub.nodes]
        form = profiles.uwpx_form(self.title, nodes)
        await self._publish(form)

    async def _publish(self, item: profiles.Item) -> None:
        key, text = (item.node, item.item_id), tostring(item.payload)
        if self._sent.get(key) == text:
            return  # unchanged (uwpx: the other fields of a device that changed one)
        options = self._options(item.node) if self._use_options else None
        if options is None:
            # Without preconditions a server may auto-create the node with its defaults
            # (PEP: max_items 1): configure it first.
            await self._ensure_once(item.node)
        request = wire.build_publish(item.node, item.item_id, item.payload, options)
        # Noted when sent, not when answered: with publishes in flight, the next one must
        # compare with the last one sent (a value that went back would be skipped otherwise).
        self._sent[key] = text
        published = False
        try:
            try:
                await self._iq(request)
            except PubSubRefused as err:
                # No node yet, a node configured otherwise, or options this server does not
                # know (ejabberd 23.01 refuses pubsub#max_items there): configure, then again.
                await self._ensure_once(item.node)
                await self._publish_again(item, err, options is not None)
            published = True
        finally:
            if not published and self._sent.get(key) == text:
                del self._sent[key]  # not on the node: the next publish must send it
        if self._problem is not None:
            _LOGGER.info("pubsub: publishing to %s again", self.target)
            self._problem = None
        self._backoff.reset()

    async def _ensure_once(self, node: str) -> None:
        async with self._setting_up:  # one create/configure, not one per device
            if node not in self._ensured:
                await self._ensure_node(node)
                self._ensured.add(node)

    async def _publish_again(self, item: profiles.Item, err: PubSubRefused, options: bool) -> None:
        if options and (
            err.condition in ("conflict", "item-not-found") or err.detail in _PRECONDITION
        ):
            try:
                await self._iq(
                    wire.build_publish(
                        item.node, item.item_id, item.payload, self._options(item.node)
                    )
                )
                return
            except PubSubRefused:
                pass  # the node is configured as asked; the server reads the options otherwise
        if options and self._use_options:
            _LOGGER.info(
                "pubsub: %s refuses hubd's publish-options (%s); the node is configured "
                "instead and publishes go without them",
                self.target,
                err,
            )
            self._use_options = False
        await self._iq(wire.build_publish(item.node, item.item_id, item.payload))

    def _options(self, node: str) -> dict[str, str]:
        access_model = "presence" if self.settings.pep else "whitelist"
        if node == self.settings.node:
            count = len(self.devices)
        elif node == profiles.UI:
            count = 1
        else:
            count = sum(len(n.spec.fields) for d in self.devices if (n := self.hub.nodes.get(d)))
        return wire.node_options(access_model, wire.max_items_for(count))

    async def _ensure_node(self, node: str) -> None:
        """Create the node configured as hubd needs it, or configure the one that exists."""
        options = self._options(node)
        try:
            await self._iq(wire.build_create(node, options))
            _LOGGER.info("pubsub: created node %s on %s", node, self.target)
        except PubSubRefused as err:
            if err.condition != "conflict":
                raise
            await self._iq(wire.build_configure(node, options))
            _LOGGER.info("pubsub: configured node %s on %s", node, self.target)
        if node == self.settings.node and not self.settings.pep:
            await self._sync_affiliations()

    # --- session ---------------------------------------------------------------------

    def _on_session_start(self, _event: Any) -> None:
        self._ready = False
        self._ensured.clear()
        self._spawn(self._setup(), "pubsub setup")

    def _on_disconnected(self, _event: Any) -> None:
        self._ready = False
        for task in list(self._tasks):
            task.cancel()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def _setup(self) -> None:
        """Read what the node holds (restarts keep it), set the audience, publish."""
        try:
            if "iot" in self.settings.profiles:
                stored = await self._stored_items(self.settings.node)
                self._stored = {
                    d: wire.field_names(p) for d, p in stored.items() if d in self.devices
                }
                for item_id in sorted(set(stored) - set(self.devices)):
                    await self._iq(wire.build_retract(self.settings.node, item_id))
            if "uwpx" in self.settings.profiles:
                await self._prune_uwpx()
            if not self.settings.pep:
                try:
                    await self._sync_affiliations()
                except PubSubRefused as err:
                    if err.condition != "item-not-found":
                        raise
                    await self._ensure_node(self.settings.node)
        except PubSubRefused as err:
            self._refused("set up", err)
            return
        self._ready = True
        _LOGGER.info(
            "pubsub: publishing %d device(s) to %s on %s (%s)",
            len(self.devices),
            self.settings.node,
            self.target,
            ", ".join(self.settings.profiles),
        )
        self._sent.clear()
        self._dirty |= set(self.devices)
        self._kick()

    async def _stored_items(self, node: str) -> dict[str, Element | None]:
        try:
            return wire.parse_items(await self._iq(wire.build_items_request(node), "get"))
        except PubSubRefused as err:
            if err.condition == "item-not-found":
                return {}  # no node yet: the first publish makes it
            raise

    async def _sync_affiliations(self) -> None:
        """Members = the access lists; anyone else this hub made a member loses it."""
        node = self.settings.node
        current = wire.parse_affiliations(
            await self._iq(wire.build_affiliations_request(node), "get")
        )
        wanted = set(self.members)
        changes = {jid: "member" for jid in sorted(wanted) if current.get(jid) != "member"}
        gone = sorted(j for j, a in current.items() if a == "member" and j not in wanted)
        changes.update({jid: "none" for jid in gone})
        if changes:
            await self._iq(wire.build_affiliations_set(node, changes))
            _LOGGER.info("pubsub: node %s: %d member(s), %d removed", node, len(wanted), len(gone))
        if gone:
            # A subscription may outlive the affiliation: end those too.
            subscribed = wire.parse_subscriptions(
                await self._iq(wire.build_subscriptions_request(node), "get")
            )
            ended = [jid for bare in gone for jid in subscribed.get(bare, ())]
            if ended:
                await self._iq(wire.build_subscriptions_set(node, ended))

    async def _retract_device(self, device: str) -> None:
        """A device no longer published: its items must not stay readable."""
        try:
            if "iot" in self.settings.profiles:
                await self._iq(wire.build_retract(self.settings.node, device))
                self._sent.pop((self.settings.node, device), None)
        except PubSubRefused as err:
            if err.condition != "item-not-found":
                self._refused(f"retract {device} from", err)

    async def _prune_uwpx(self) -> None:
        """Items of devices (or fields) no longer published must not stay readable."""
        nodes = [self.hub.nodes[d] for d in self.devices if d in self.hub.nodes]
        for name, wanted in profiles.uwpx_ids(nodes).items():
            for item_id in sorted(set(await self._stored_items(name)) - wanted):
                await self._iq(wire.build_retract(name, item_id))
                self._sent.pop((name, item_id), None)

    async def _refresh_uwpx(self) -> None:
        """After a reload removed devices: their items go, the form names the rest."""
        try:
            await self._prune_uwpx()
            await self._publish_form()
        except PubSubRefused as err:
            self._refused("update", err)

    # --- failures and retries ------------------------------------------------------------

    def _refused(self, what: str, err: PubSubRefused) -> None:
        if self._retry is not None:
            return  # a retry is already due: this is the same outage
        delay = self._backoff.next_delay()
        problem = f"{what} {self.settings.node}: {err}"
        if problem != self._problem:  # one line per kind of refusal, not per attempt
            _LOGGER.warning(
                "pubsub: %s refused to %s; the rest of hubd runs, trying again in %.0f s",
                self.target,
                problem,
                delay,
            )
            self._problem = problem
        self._retry = asyncio.get_running_loop().call_later(delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        if self._ready:
            self._kick()
        elif self.xmpp.is_connected():
            self._spawn(self._setup(), "pubsub setup")

    async def _iq(self, element: Element, kind: str = "set") -> Element | None:
        iq: Any = (self.xmpp.make_iq_set if kind == "set" else self.xmpp.make_iq_get)(
            ito=self.target
        )
        iq.xml.append(element)
        try:
            result = await iq.send(timeout=IQ_TIMEOUT)
        except IqError as err:
            condition, detail = wire.error_conditions(err.iq.xml.find("{jabber:client}error"))
            raise PubSubRefused(condition, detail, err.text or "") from None
        except IqTimeout:
            text = f"no answer in {IQ_TIMEOUT:g} s"
            raise PubSubRefused("remote-server-timeout", None, text) from None
        answer: Element | None = next(iter(result.xml), None)
        return answer

    # --- tasks --------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = self._track(work, name)
        task.add_done_callback(self._finished)
        return task

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """A task whose outcome its creator awaits (and cancelled on disconnect)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("pubsub: %s failed", task.get_name(), exc_info=error)

    async def close(self) -> None:
        """Let the publishes in flight finish (briefly), then stop."""
        pending = [task for running in self._in_flight.values() for task in running]
        if pending:
            await asyncio.wait(pending, timeout=SETTLE_TIMEOUT)
        self._on_disconnected(None)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=SETTLE_TIMEOUT)

    def _on_event(self, message: Any) -> None:
        """Items others publish are data, never commands: control stays on XEP-0325."""
        _LOGGER.debug("pubsub: ignoring an event from %s", message["from"])
