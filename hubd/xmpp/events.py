"""IoT events over XMPP: ``subscribe``/``unsubscribe`` (``urn:xmpp:iot:events``) and delivery.

Requests follow the ProtoXEP "IoT – Events" with the schema's attribute names
(``changedBy``, ``changedUp``, ``changedDown``, ``currentValue``,
``minInterval``, ``maxInterval``, ``maxAge``, ``req``; digest §2).  A request
without ``<node/>`` subscribes to every node.  The answer is ``accepted`` in
the sensor-data namespace, as in the draft's examples.

Delivery: each event is an XEP-0323 ``<fields seqnr done='true'>`` message to
the subscriber's full JID; an event that waited (hub offline, subscriber
away) carries an XEP-0203 ``<delay/>`` with the reading's time.  The outbox
entry is removed only when the server acknowledges the message (XEP-0198);
a bounce keeps it for the subscriber's return.  The hub asks for each
subscriber's presence so that it knows when to hold events and when to send
them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.xmlstream.handler import Callback, CoroutineCallback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.core import xsd
from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.limits import PolicyViolation
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue
from hubd.core.node import Node
from hubd.core.remote_nodes import RemoteNodeProxy
from hubd.errors import BadRequest, HubdError, NodeNotFound
from hubd.events.engine import EventEngine
from hubd.events.event import Event
from hubd.events.subscriptions import FieldRule, SubscriptionSpec
from hubd.people.watch import CHAT, ROOM, event_text
from hubd.people.wording import delayed_text
from hubd.xmpp.acks import AckPacer
from hubd.xmpp.direct_send import event_message, send_now
from hubd.xmpp.errors import ErrorCondition, condition_for
from hubd.xmpp.prebuilt_events import EventTexts, fields_message
from hubd.xmpp.resend_stamps import ResendStamps, add_delay
from hubd.xmpp.sensordata_xml import (
    NodeRef,
    build_accepted,
    build_fields_series,
    convert,
    local_name,
    parse_bool_attr,
    parse_node_ref,
    parse_seqnr,
    requested_categories,
    require,
    timestamp_elements,
)
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result

if TYPE_CHECKING:  # only with the omemo extra
    from hubd.errors import EncryptionFailed
    from hubd.xmpp.omemo import OmemoService
    from hubd.xmpp.remote_events import RemoteEvents

_LOGGER = logging.getLogger(__name__)

NS_EVENTS = "urn:xmpp:iot:events"
EVENT_ID_PREFIX = "hubd-ev-"
BATCH_SEPARATOR = "."
DELAYED_AFTER = timedelta(seconds=2)
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")
DROPPED = FieldSpec(
    name="dropped_events",
    type=FieldType.LONG,
    categories=frozenset({Category.STATUS}),
    description="events dropped while the subscriber was away (queue limit)",
)


def parse_subscribe(elem: Element) -> tuple[int, tuple[NodeRef, ...], dict[str, Any]]:
    """Parse ``<subscribe/>``: seqnr, nodes, and the keyword arguments of a spec."""
    where = "subscribe"
    seqnr = parse_seqnr(elem, where)
    nodes: list[NodeRef] = []
    rules: list[FieldRule] = []
    for child in elem:
        name = local_name(child, NS_EVENTS)
        if name == "node":
            nodes.append(parse_node_ref(child, where))
        elif name == "field":
            rules.append(_parse_rule(child))
    low, high = _duration(elem, "minInterval"), _duration(elem, "maxInterval")
    if low is not None and high is not None and low > high:
        raise BadRequest("subscribe: minInterval is longer than maxInterval")
    options: dict[str, Any] = {
        "rules": tuple(rules),
        "categories": requested_categories(elem),
        "min_interval": low,
        "max_interval": high,
        "max_age": _duration(elem, "maxAge"),
        "req": parse_bool_attr(elem, "req", where),
    }
    return seqnr, tuple(nodes), options


def _parse_rule(elem: Element) -> FieldRule:
    where = "subscribe: field"
    name = require(elem, "name", where)

    def amount(attr: str) -> Decimal | None:
        text = elem.get(attr)
        if text is None:
            return None
        value = convert(f"{where} {name}: {attr}", xsd.parse_decimal, text)
        if value <= 0:
            raise BadRequest(f"{where} {name}: {attr} must be positive")
        return value

    by = amount("changedBy")
    up, down = (by, by) if by is not None else (amount("changedUp"), amount("changedDown"))
    current = elem.get("currentValue")
    reference = (
        None
        if current is None
        else convert(f"{where} {name}: currentValue", xsd.parse_decimal, current)
    )
    return FieldRule(name, up, down, reference)


def _duration(elem: Element, attr: str) -> timedelta | None:
    text = elem.get(attr)
    if text is None:
        return None
    value = convert(f"subscribe: {attr}", xsd.parse_duration, text)
    if value <= timedelta(0):
        raise BadRequest(f"subscribe: {attr} must be positive")
    return value


class EventService:
    """Subscriptions by XMPP, and the delivery side of the event engine."""

    def __init__(
        self, xmpp: ClientXMPP, hub: Hub, access: AccessPolicy, engine: EventEngine
    ) -> None:
        self.xmpp = xmpp
        self.hub = hub
        self.access = access
        self.engine = engine
        self.connected = False
        self._present: dict[str, set[str]] = {}  # bare JID -> available full JIDs
        # Group-chat rooms subscribe too (rooms[].devices): reachable while joined.
        self._is_room: Callable[[str], bool] = lambda _jid: False
        self._room_joined: Callable[[str], bool] = lambda _jid: False
        # Event elements shared by the subscribers of one engine batch (keyed by the
        # values' ids: the values are kept with them, so the ids stay theirs).
        self._elements: dict[tuple[object, ...], tuple[object, list[Element]]] = {}
        self._texts = EventTexts(xmpp)  # each subscription's message text, prebuilt
        #: Asks the server to acknowledge what was sent (the outbox waits for it).
        self.acks = AckPacer(xmpp)
        #: Delay stamps for what a resumed stream re-sends (hubd/xmpp/resend_stamps.py).
        self.resend_stamps = ResendStamps(xmpp)
        #: Set with OMEMO on: chat events to people who last wrote encrypted go encrypted.
        self.omemo: OmemoService | None = None
        #: Set with remotes: subscriptions on their nodes (hubd/xmpp/remote_events.py).
        self.remote: RemoteEvents | None = None
        engine.attach(self)
        xmpp.register_handler(
            CoroutineCallback(
                "iot events",
                PayloadMatcher("iq", NS_EVENTS, ("subscribe", "unsubscribe"), ("get", "set")),
                self._on_iq,
            )
        )
        xmpp.register_handler(
            Callback("iot event bounce", MatchXPath("{jabber:client}message"), self._on_message)
        )
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("session_resumed", self._on_session_resumed)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("stanza_acked", self._on_acked)
        xmpp.add_event_handler("presence_available", self._on_available)
        xmpp.add_event_handler("presence_unavailable", self._on_unavailable)
        xmpp.plugin["xep_0030"].add_feature(NS_EVENTS)

    # --- requests ---------------------------------------------------------------

    async def _on_iq(self, iq: Any) -> None:
        requester = iq["from"]
        element = payload(iq, "{" + NS_EVENTS + "}")
        assert element is not None
        await self.access.ensure(str(requester))  # XEP-0324: ask about unknown requesters
        try:
            self.access.admit(str(requester), Role.READER, element)
            if element.tag.endswith("}unsubscribe"):
                await self._unsubscribe(requester, parse_seqnr(element, "unsubscribe"))
                send_result(iq)
                if self.remote is not None:
                    self.remote.kick()  # the last subscriber of a remote node may be gone
                return
            seqnr, refs, options = parse_subscribe(element)
            node_ids = self._nodes(refs, str(requester))
            self._check_count(requester.bare, node_ids)
            if options.get("req") and self.remote is not None:
                await self.remote.read_current(node_ids)  # as a local node's cached values
            for node_id in node_ids:
                spec = SubscriptionSpec(
                    subscriber=requester.bare,
                    target=requester.full,
                    node_id=node_id,
                    seqnr=seqnr,
                    **options,
                )
                await self.engine.subscribe(spec)
            if self.remote is not None:
                await self.remote.ensure()  # accepted: the remote's events flow
        except HubdError as err:
            send_error(iq, condition_for(err))
            return
        send_result(iq, build_accepted(seqnr))
        _LOGGER.info("%s subscribed to %s (seqnr %d)", requester.full, ", ".join(node_ids), seqnr)
        self._present.setdefault(requester.bare, set()).add(requester.full)
        self._watch_presence(requester)

    def _nodes(self, refs: Sequence[NodeRef], requester: str) -> list[str]:
        visible = [n.id for n in self.access.visible(requester, self.hub.nodes)]
        readable = lambda key: self.access.allows(requester, Role.READER, key)  # noqa: E731
        if not refs:  # all nodes: this hub's own, then the remotes' the asker may read
            return visible + ([] if self.remote is None else self.remote.all_keys(readable))
        remote = (
            [] if self.remote is None else [r for r in refs if r.source_id in self.remote.sources]
        )
        refs = [r for r in refs if r not in remote]
        # A node the requester may not read is answered like one that does not exist.
        unknown = sorted({r.node_id for r in refs} - set(visible))
        if unknown:
            raise NodeNotFound(", ".join(unknown))
        keys = [] if self.remote is None else self.remote.node_keys(remote, readable)
        return list(dict.fromkeys([*(r.node_id for r in refs), *keys]))

    def _check_count(self, subscriber: str, node_ids: Sequence[str]) -> None:
        """Refuse a subscribe that would take ``subscriber`` over its subscription limit."""
        current = {sub.spec.node_id for sub in self.engine.subscriptions_of(subscriber)}
        total = len(current | set(node_ids))  # one per node: a new one replaces the old
        limit = self.access.limits.max_subscriptions
        if total > limit:
            raise PolicyViolation(f"At most {limit} subscriptions per account; unsubscribe first.")

    async def _unsubscribe(self, requester: JID, seqnr: int) -> None:
        # The draft answers an empty result "regardless if the subscription existed".
        for sub in self.engine.subscriptions_of(requester.bare):
            if sub.spec.seqnr == seqnr:
                await self.engine.unsubscribe(requester.bare, sub.spec.node_id)
                _LOGGER.info(
                    "%s unsubscribed from %s (seqnr %d)", requester.full, sub.spec.node_id, seqnr
                )

    def _watch_presence(self, requester: JID) -> None:
        """Ask for the subscriber's presence, to hold events while it is away."""
        item = self.xmpp.client_roster[requester.bare]
        if item["subscription"] in ("to", "both"):
            _LOGGER.debug("subscriber %s: its presence is followed", requester.bare)
        elif not item["pending_out"]:
            self.xmpp.send_presence(pto=requester.bare, ptype="subscribe")

    # --- presence and connection -------------------------------------------------

    def _on_available(self, presence: Any) -> None:
        sender = presence["from"]
        if sender.bare == self.xmpp.boundjid.bare or self._is_room(sender.bare):
            return
        self._present.setdefault(sender.bare, set()).add(sender.full)
        subs = self.engine.subscriptions_of(sender.bare)
        if subs:
            _LOGGER.debug("subscriber %s: its presence is followed", sender.bare)
            if subs[0].spec.target not in self._present[sender.bare]:
                self.engine.retarget(sender.bare, sender.full)
            else:
                self.engine.request_flush(sender.bare)

    def _on_unavailable(self, presence: Any) -> None:
        sender = presence["from"]
        if self._is_room(sender.bare):
            return
        present = self._present.setdefault(sender.bare, set())
        present.discard(sender.full)
        subs = self.engine.subscriptions_of(sender.bare)
        if subs and not present:
            _LOGGER.debug("subscriber %s is away: holding its events", sender.bare)
        if subs and present and subs[0].spec.target == sender.full:
            self.engine.retarget(sender.bare, next(iter(present)))

    def _on_session_start(self, _event: Any) -> None:
        self.connected = True
        self._present.clear()  # presence will arrive again for this session
        self.engine.session_restarted()

    def _on_session_resumed(self, _event: Any) -> None:
        self.connected = True
        self.engine.request_flush(None)

    def _on_disconnected(self, _event: Any) -> None:
        self.connected = False

    # --- delivery ------------------------------------------------------------------

    def attach_rooms(self, is_room: Callable[[str], bool], joined: Callable[[str], bool]) -> None:
        """Tell rooms apart from people: a room is reachable while the hub is in it."""
        self._is_room = is_room
        self._room_joined = joined

    def can_deliver(self, subscriber: str) -> bool:
        """Connected, and the subscriber has an available resource (or we cannot know)."""
        if not self.connected:
            return False
        if self._is_room(subscriber):
            return self._room_joined(subscriber)
        present = self._present.get(subscriber)
        return present is None or bool(present)

    def deliver(self, event_id: int, event: Event) -> None:
        """Send one event as an XEP-0323 fields message."""
        node = self.engine.nodes.get(event.node_id)
        # A room's devices are the owner's choice in the config; people are checked.
        allowed = event.channel == ROOM or (
            node is not None and self.access.allows(event.subscriber, Role.READER, node.id)
        )
        if node is None or not allowed:
            # The node is gone, or a reload took the subscriber's right to read it:
            # nothing to deliver (the access lists decide at delivery, not only at subscribe).
            self.engine.acked([event_id])
            return
        # A provisioning server may narrow a subscriber to some fields (XEP-0324).
        narrowed = (
            None
            if event.channel == ROOM
            else self.access.fields_for(event.subscriber, node.id, Role.READER)
        )
        pairs: list[tuple[FieldSpec, FieldValue]] = [
            (spec, value)
            for value in event.values
            if (spec := node.spec.get(value.name)) is not None
            and (narrowed is None or value.name in narrowed)
        ]
        if narrowed is not None and not pairs and not event.dropped:
            self.engine.acked([event_id])  # nothing in it this subscriber may read
            return
        if event.dropped:
            stamp = datetime.now(UTC)
            pairs.append((DROPPED, FieldValue(DROPPED.name, event.dropped, stamp)))
        late = event.delayed or datetime.now(UTC) - event.created > DELAYED_AFTER
        if event.channel in (CHAT, ROOM):
            message = self.xmpp.make_message(
                mto=JID(event.target), mtype="chat" if event.channel == CHAT else "groupchat"
            )
            text = event_text(node, [v for _, v in pairs])
            message["body"] = delayed_text(text, event.created, datetime.now(UTC)) if late else text
            message["id"] = f"{EVENT_ID_PREFIX}{event_id}"
        else:
            message_id, ref = f"{EVENT_ID_PREFIX}{event_id}", wire_ref(node)
            # The common case is written from a prebuilt text (hubd/xmpp/prebuilt_events.py).
            if not (late or event.dropped) and self._texts.write(event, ref, message_id, pairs):
                self._sent(message_id, event.created, [event_id])
                return
            message = fields_message(self.xmpp, event.target, event.seqnr, ref, message_id, pairs)
        if late:
            add_delay(message.xml, self.xmpp.boundjid.bare, event.created)
        if (
            event.channel == CHAT
            and self.omemo is not None
            and self.omemo.prefers_encrypted(JID(event.target).bare)
        ):
            # The sealed stanza keeps the id (slixmpp-omemo copies it): acks and stamps match.
            self.omemo.send_encrypted(
                message,
                sent=lambda: self._sent_later(str(message["id"]), event.created, [event_id]),
                failed=lambda err: self._not_encrypted(event_id, event, err),
            )
            return
        self._send(message, event.created, [event_id])

    def _sent_later(self, message_id: str, created: datetime, event_ids: list[int]) -> None:
        """An encrypted event left after its batch: acknowledged, or ask again."""
        if self._acks_expected():
            self.resend_stamps.sent(message_id, created)
            self.acks.request()
        else:
            self.engine.acked(event_ids)

    def _not_encrypted(self, event_id: int, event: Event, err: EncryptionFailed) -> None:
        # Never in the clear to a person who wrote encrypted: held for the next flush.
        _LOGGER.warning("event %d for %s held: cannot encrypt it: %s", event_id, event.target, err)
        self.engine.failed(event_id)

    def deliver_batch(self, events: Sequence[tuple[int, Event]]) -> None:
        """Send several events of one subscription as one fields message.

        The engine batches only fresh events of the same subscriber, target,
        node and seqnr.  Each event keeps its own ``<timestamp>`` elements, in
        order (XEP-0323 lets one ``<fields/>`` carry several); the message id
        names every event, so one acknowledgement or bounce covers them all.
        Chat and room channels, a node gone or a right withdrawn: one by one.
        """
        first = events[0][1]
        node = self.engine.nodes.get(first.node_id)
        if (
            first.channel in (CHAT, ROOM)
            or node is None
            or not self.access.allows(first.subscriber, Role.READER, node.id)
            or self.access.fields_for(first.subscriber, node.id, Role.READER) is not None
            or any(event.dropped or event.delayed for _, event in events)
        ):
            for event_id, event in events:
                self.deliver(event_id, event)
            return
        # The same values go to every subscriber of the node: their elements are
        # built once per engine batch (end_batch forgets them).
        series = []
        for _, event in events:
            key = (node.id, *map(id, event.values))
            cached = self._elements.get(key)
            if cached is None:
                pairs = [(spec, v) for v in event.values if (spec := node.spec.get(v.name))]
                cached = self._elements[key] = (event.values, timestamp_elements(pairs))
            series.append(cached[1])
        ids = [event_id for event_id, _ in events]
        message = event_message(
            self.xmpp,
            first.target,
            EVENT_ID_PREFIX + BATCH_SEPARATOR.join(map(str, ids)),
            build_fields_series(first.seqnr, wire_ref(node), series),
        )
        if datetime.now(UTC) - first.created > DELAYED_AFTER:
            add_delay(message.xml, self.xmpp.boundjid.bare, first.created)
        self._send(message, first.created, ids)

    def _send(self, message: Any, created: datetime, event_ids: list[int]) -> None:
        """Send an event message; it leaves the outbox when the server acknowledges it."""
        send_now(self.xmpp, message)  # written in this turn when nothing is queued before it
        self._sent(str(message["id"]), created, event_ids)

    def _sent(self, message_id: str, created: datetime, event_ids: list[int]) -> None:
        if self._acks_expected():
            self.resend_stamps.sent(message_id, created)
        else:
            self.engine.acked(event_ids)

    def end_batch(self) -> None:
        """Ask the server to acknowledge what was just sent (see hubd/xmpp/acks.py)."""
        self._elements.clear()
        self.acks.request()

    def _acks_expected(self) -> bool:
        return self.acks.enabled()

    def _on_acked(self, stanza: Any) -> None:
        event_ids = _event_ids(stanza)
        if event_ids:
            self.engine.acked(event_ids)

    def _on_message(self, message: Any) -> None:
        if message["type"] != "error":
            return
        event_ids = _event_ids(message)
        if event_ids:
            sender = message["from"]
            _LOGGER.info(
                "event %s bounced from %s: held for later",
                ", ".join(map(str, event_ids)),
                sender,
            )
            self._present.setdefault(sender.bare, set()).discard(sender.full)
            for event_id in event_ids:
                self.engine.failed(event_id)


def wire_ref(node: Node) -> NodeRef:
    """How events name ``node``: a remote's node by its own id and the remote's sourceId."""
    if isinstance(node, RemoteNodeProxy):
        return NodeRef(node.remote_id, node.source_id)
    return NodeRef(node.id, node.source)


def _event_ids(stanza: Any) -> list[int]:
    """The events a message carried: ``hubd-ev-12``, or ``hubd-ev-12.15.19`` for a batch."""
    stanza_id = str(stanza["id"] or "")
    if not stanza_id.startswith(EVENT_ID_PREFIX):
        return []
    try:
        return [int(part) for part in stanza_id[len(EVENT_ID_PREFIX) :].split(BATCH_SEPARATOR)]
    except ValueError:
        return []
