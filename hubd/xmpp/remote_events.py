"""IoT events from remote hubs: this hub subscribes at each remote, once per remote node.

A person subscribes here to ``garage/door`` (``nodeId='door'
sourceId='garage'``); the event engine keeps that subscription on a proxy
node (``hubd/core/remote_nodes.py``).  This module keeps this hub's own
subscriptions at the remotes in step with the engine's: one
``urn:xmpp:iot:events`` subscription per remote node that has subscribers
here (as this hub, with no rules: every change comes, the subscribers'
own rules are applied here), ended when the last subscriber is gone.  Each
event the remote sends (an XEP-0323 ``<fields>`` message under one of the
sequence numbers this hub chose) goes into the proxy, hence into this hub's
engine: its store, outbox, delay stamps and acknowledgements hold from here
to the subscriber.

A remote that goes offline turns its proxies' ``online`` field false (an
event for their subscribers); when it is back (its tree fetched again) its
``online`` is true again and each subscription is asked for again (the remote
keeps one in its store, but asking again costs one request and covers a remote
whose state was lost: the remote replaces a subscription of the same node).  A subscribe
waits for the remote's answer (within the remote's ``timeout``) so that the
person's ``accepted`` means the events flow; a remote that cannot be reached
then is subscribed when it comes back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback

from hubd.core.driver import utc_now
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue
from hubd.core.remote_nodes import RemoteNodeTable, split_key
from hubd.core.remote_settings import remote_node_key
from hubd.core.remote_source import STATE_OK, RemoteSource, RemoteSources
from hubd.errors import BadRequest, NodeNotFound
from hubd.events.engine import EventEngine
from hubd.xmpp.remote_readout import RemoteReader
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, NodeRef, ParsedField, parse_fields, qname
from hubd.xmpp.stanzas import PayloadMatcher, payload

_LOGGER = logging.getLogger(__name__)

NS_EVENTS = "urn:xmpp:iot:events"
#: This hub's sequence numbers at the remotes start here: apart from its readouts'.
FIRST_SEQNR = 2**30


def build_subscribe(seqnr: int, node_id: str) -> Element:
    """This hub's subscription to one node of a remote: every change, no current value."""
    element = Element(qname(NS_EVENTS, "subscribe"), {"seqnr": str(seqnr), "req": "false"})
    SubElement(element, qname(NS_EVENTS, "node"), {"nodeId": node_id})
    return element


def build_unsubscribe(seqnr: int) -> Element:
    """The end of the subscription made under ``seqnr``."""
    return Element(qname(NS_EVENTS, "unsubscribe"), {"seqnr": str(seqnr)})


def field_pairs(parsed: Iterable[ParsedField]) -> list[tuple[FieldSpec, FieldValue]]:
    """Specs and values of a remote's event; a field that cannot be one here is left out."""
    pairs = []
    for item in parsed:
        try:
            spec = FieldSpec(
                name=item.name,
                type=item.type,
                unit=item.unit,
                categories=item.categories or frozenset({Category.MOMENTARY}),
                options=(str(item.value),) if item.type is FieldType.ENUM else (),
            )
        except ValueError as err:
            _LOGGER.debug("remote event field %s left out: %s", item.name, err)
            continue
        pairs.append((spec, item.as_field_value()))
    return pairs


def readings_in_order(parsed: Iterable[ParsedField]) -> list[list[tuple[FieldSpec, FieldValue]]]:
    """A remote's batch (several ``<timestamp>`` of one node), reading by reading, in order."""
    groups = itertools.groupby(parsed, key=lambda item: item.timestamp)
    return [pairs for _, group in groups if (pairs := field_pairs(group))]


class RemoteEvents:
    """This hub's subscriptions at the remotes, following the engine's on their nodes."""

    #: The forwarded readout (hubd/xmpp/remote_readout.py), for ``req='true'``.
    reader: RemoteReader | None = None

    def __init__(
        self,
        xmpp: ClientXMPP,
        sources: RemoteSources,
        table: RemoteNodeTable,
        engine: EventEngine,
    ) -> None:
        self.xmpp = xmpp
        self.sources = sources
        self.table = table
        self.engine = engine
        #: Remote node key -> the seqnr of this hub's subscription there (answered).
        self.active: dict[str, int] = {}
        self._seqnrs = itertools.count(FIRST_SEQNR)
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        xmpp.register_handler(
            Callback(
                "remote iot events",
                PayloadMatcher("message", NS_SENSORDATA, ("fields",)),
                self._on_fields,
            )
        )
        xmpp.add_event_handler("session_start", self._on_session_start)

    # --- demand ----------------------------------------------------------------

    def wanted(self) -> set[str]:
        """The remote nodes with at least one subscriber here."""
        local = self.engine.hub.nodes
        return {
            key[1]
            for key in self.engine.subscriptions
            if key[1] not in local and self.table.is_remote(key[1])
        }

    async def ensure(self) -> None:
        """Subscribe and unsubscribe at the remotes now, as the engine's subscriptions say."""
        async with self._lock:
            wanted = self.wanted()
            ended = [key for key in self.active if key not in wanted]
            fresh = [key for key in sorted(wanted) if key not in self.active]
            await asyncio.gather(
                *(self._unsubscribe(key) for key in ended),
                *(self._subscribe(key) for key in fresh),
            )

    def kick(self) -> None:
        """Bring the remotes in step soon (in the run task)."""
        self._kick.set()

    async def run(self) -> None:
        """Follow the demand until cancelled."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            await self.ensure()

    # --- remotes coming and going ------------------------------------------------

    def on_remote_changed(self, source: RemoteSource) -> None:
        """A remote's state or tree changed: proxies follow; subscribe again once back."""
        if not source.online:
            # Asked again when it is back (see the module docstring).
            for key in [k for k in self.active if split_key(k)[0] == source.id]:
                del self.active[key]
        stamp = utc_now()
        for key in [k for k in self.table if split_key(k)[0] == source.id]:
            node = source.node(split_key(key)[1])
            online = source.online and node is not None and node.state == STATE_OK
            proxy = self.table[key]
            if proxy.cache.get("online", None) is None or proxy.cache["online"].value != online:
                online_spec = proxy.spec.get("online")
                if online_spec is not None:
                    value = FieldValue("online", online, stamp)
                    self.table.ingest(source.id, split_key(key)[1], [(online_spec, value)])
        if source.online:
            self.kick()

    def _on_session_start(self, _event: Any) -> None:
        # A new session of this hub: the remotes deliver to this resource again
        # once asked again (a remote keeps a subscription, but it may have lost it).
        self.active.clear()
        self.kick()

    # --- the wire ------------------------------------------------------------------

    async def _subscribe(self, key: str) -> None:
        source_id, node_id = split_key(key)
        source = self.sources.get(source_id)
        if source is None or not source.online or source.node(node_id) is None:
            return  # subscribed when the remote is back (on_remote_changed)
        seqnr = next(self._seqnrs)
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(build_subscribe(seqnr, node_id))
        try:
            await iq.send(timeout=source.timeout)
        except IqTimeout:
            _LOGGER.warning("remote %s: no answer to the subscription to %s", source_id, node_id)
            return
        except IqError as err:
            said = err.iq["error"]["text"] or err.condition
            _LOGGER.warning(
                "remote %s refused the subscription to %s: %s", source_id, node_id, said
            )
            return
        self.active[key] = seqnr
        _LOGGER.info("subscribed at remote %s to %s (seqnr %d)", source_id, node_id, seqnr)

    async def _unsubscribe(self, key: str) -> None:
        seqnr = self.active.pop(key)
        source = self.sources.get(split_key(key)[0])
        if source is None or not source.online:
            return
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(build_unsubscribe(seqnr))
        try:
            await iq.send(timeout=source.timeout)
        except (IqError, IqTimeout) as err:
            # Its events for that node are then only not wanted here: the engine drops them.
            _LOGGER.info("remote %s: unsubscribe from %s not confirmed: %s", source.id, key, err)
            return
        _LOGGER.info("unsubscribed at remote %s from %s", source.id, split_key(key)[1])

    def _on_fields(self, message: Any) -> None:
        source = self.sources.by_jid(str(message["from"]))
        element = payload(message, "{" + NS_SENSORDATA + "}")
        if source is None or element is None or message["type"] == "error":
            return
        try:
            seqnr = int(element.get("seqnr", ""))
        except ValueError:
            return
        if seqnr < FIRST_SEQNR:
            return  # a readout's answer (hubd/xmpp/remote_readout.py), not an event
        try:
            readings = parse_fields(element)
        except BadRequest as err:
            _LOGGER.warning("remote %s sent an unreadable event: %s", source.id, err)
            return
        for ref, parsed in readings:
            if remote_node_key(source.id, ref.node_id) not in self.table:
                continue
            for pairs in readings_in_order(parsed):
                self.table.ingest(source.id, ref.node_id, pairs)

    def node_keys(self, refs: Iterable[NodeRef], readable: Callable[[str], bool]) -> list[str]:
        """The proxies' keys of the refs naming a remote's node (``sourceId`` a remote's id).

        A node the remote never showed, or one the asker may not read here
        (``readable`` of its key), is answered like one that does not exist.
        """
        keys, unknown = [], []
        for ref in refs:
            source = self.sources.get(ref.source_id or "")
            if source is None:
                continue
            key = remote_node_key(source.id, ref.node_id)
            node = source.node(ref.node_id)
            if node is None or not node.readable or not readable(key):
                unknown.append(ref.node_id)
            else:
                keys.append(key)
        if unknown:
            raise NodeNotFound(", ".join(sorted(set(unknown))))
        return keys

    def all_keys(self, readable: Callable[[str], bool]) -> list[str]:
        """The proxies' keys of every remote node the asker may read (all nodes)."""
        return self.sources.readable_keys(readable)

    async def read_current(self, keys: Iterable[str]) -> None:
        """Read ``keys`` at their remotes now (``req='true'``): their values cached here.

        A remote that cannot give them (offline, silent within its timeout)
        leaves them without a value, as a node of this hub that cannot be read.
        """
        by_source: dict[str, list[str]] = {}
        for key in keys:
            if key in self.table:
                source_id, node_id = split_key(key)
                by_source.setdefault(source_id, []).append(node_id)
        for source_id, node_ids in by_source.items():
            source = self.sources.get(source_id)
            if self.reader is None or source is None:
                continue
            request = Element(qname(NS_SENSORDATA, "req"), {"momentary": "true"})
            answer = await self.reader.read(source, request, node_ids)
            fields = Element(qname(NS_SENSORDATA, "fields"), {"seqnr": "1"})
            fields.extend(answer.nodes)
            try:
                readings = parse_fields(fields)
            except BadRequest as err:
                _LOGGER.warning("remote %s sent an unreadable readout: %s", source.id, err)
                continue
            for ref, parsed in readings:
                for pairs in readings_in_order(parsed):
                    self.table.ingest(source.id, ref.node_id, pairs)
