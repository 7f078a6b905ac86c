"""XEP-0323 readouts: ``req`` → ``accepted`` → ``fields``/``failure`` messages, the last one done.

Each readout runs as a task this service owns (cancelled on shutdown, or by
the requester's ``cancel``).  Nodes are read concurrently; one failing node
becomes a ``failure`` for that node and never fails the others.  Output is
conservative (digest §9): the last message always carries ``done='true'``,
since slixmpp and Smack clients ignore a standalone ``<done/>``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.handler import Callback

from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.limits import RateLimited
from hubd.core.model import Category, FieldSpec, FieldValue
from hubd.core.node import Node
from hubd.core.remote_settings import remote_node_key
from hubd.core.remote_source import RemoteSource
from hubd.errors import BadRequest, DriverError, HubdError, NodeNotFound
from hubd.events.store import Store
from hubd.events.subscriptions import decode_value
from hubd.xmpp.direct_send import plain_message, result_iq, send_now
from hubd.xmpp.errors import ErrorCondition, condition_for
from hubd.xmpp.fast_routes import routes_for
from hubd.xmpp.sensordata_xml import (
    HISTORICAL,
    NS_SENSORDATA,
    NodeReadings,
    NodeRef,
    ReadRequest,
    build_accepted,
    build_cancelled,
    build_failure,
    build_fields,
    build_rejected,
    build_started,
    parse_cancel,
    parse_req,
    qname,
)
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error

if TYPE_CHECKING:  # imported where remotes: is configured (memory of a hub without)
    from hubd.xmpp.remote_readout import RemoteRead, RemoteReader
    from hubd.xmpp.remote_sensordata import RemoteAnswer

_LOGGER = logging.getLogger(__name__)

MAX_SCHEDULE_AHEAD = timedelta(hours=24)
HISTORY_LIMIT = 1000  # stored readings per node in one readout
HISTORY_CATEGORIES = frozenset({Category.HISTORICAL_OTHER})
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")
#: Seconds a readout passed on to a remote holds the asker's accepted for the remote's answer.
ACCEPT_WAIT = 0.05


@dataclass(frozen=True, slots=True)
class _NodeResult:
    node: Node
    values: Sequence[tuple[FieldSpec, FieldValue]]
    error: str | None = None


class ReadoutService:
    """Answers XEP-0323 read-out requests from the hub's nodes."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        hub: Hub,
        access: AccessPolicy,
        history: Store | None = None,
        remote: RemoteReader | None = None,
    ) -> None:
        self.xmpp = xmpp
        self.hub = hub
        self.access = access
        self.history = history
        self.remote = remote
        self._readouts: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._asking: set[asyncio.Task[None]] = set()  # requests waiting for provisioning
        self._accepts: dict[tuple[str, int], _Accept] = {}  # held for a remote's answer
        # In the reader's turn (not a task per request): a readout through this hub to
        # a remote starts there before this hub's own answer is written.
        xmpp.register_handler(
            Callback(
                "iot sensordata",
                PayloadMatcher("iq", NS_SENSORDATA, ("req", "cancel"), ("get", "set")),
                self._on_iq,
            )
        )
        routes = routes_for(xmpp)
        for name in ("req", "cancel"):
            routes.add("iq", qname(NS_SENSORDATA, name), self._on_iq)
        xmpp.plugin["xep_0030"].add_feature(NS_SENSORDATA)

    async def close(self) -> None:
        """Cancel the readouts in flight."""
        tasks = [*self._readouts.values(), *self._asking]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_iq(self, iq: Any) -> bool:
        if iq.xml.get("type") not in ("get", "set"):
            return False  # a result or error is an answer, not a request
        requester = iq.xml.get("from", "")
        element = payload(iq, "{" + NS_SENSORDATA + "}")
        assert element is not None  # the matcher (or the route) saw it
        if self.access.must_ask(requester):  # XEP-0324: ask about unknown requesters
            task = asyncio.create_task(self._ask_first(iq, requester, element))
            self._asking.add(task)
            task.add_done_callback(self._asking.discard)
        else:
            self._handle(iq, requester, element)
        return True

    async def _ask_first(self, iq: Any, requester: str, element: Element) -> None:
        await self.access.ensure(requester)
        try:
            self._handle(iq, requester, element)
        except Exception as error:  # answered as slixmpp does for a handler
            iq.exception(error)

    def _handle(self, iq: Any, requester: str, element: Element) -> None:
        try:
            self.access.admit(requester, Role.READER, element)
            if element.tag.endswith("}cancel"):
                self._cancel(iq, requester, parse_cancel(element))
            else:
                self._start(iq, requester, parse_req(element), element)
        except HubdError as err:
            condition = condition_for(err)
            rejected = build_rejected(element.get("seqnr", ""), condition.text)
            send_error(iq, condition, beside=rejected)

    def _cancel(self, iq: Any, requester: str, seqnr: int) -> None:
        task = self._readouts.get((requester, seqnr))
        if task is None:
            raise NodeNotFound(f"no readout {seqnr} in progress")
        if (accept := self._accepts.pop((requester, seqnr), None)) is not None:
            accept.send()  # the request's answer before the cancel's
        task.cancel()
        send_now(self.xmpp, result_iq(self.xmpp, iq, build_cancelled(seqnr)))

    def _start(self, iq: Any, requester: str, request: ReadRequest, element: Element) -> None:
        key = (requester, request.seqnr)
        if key in self._readouts:
            raise BadRequest(f"seqnr {request.seqnr} is already in use by a readout in progress")
        bare = requester.split("/", 1)[0]
        mine = sum(1 for who, _ in self._readouts if who.split("/", 1)[0] == bare)
        if mine >= self.access.limits.max_readouts:
            # Scheduled readouts (``when``) would otherwise pile up as tasks for 24 h.
            raise RateLimited(f"{mine} readouts are already in progress or scheduled; wait.")
        remote_refs = self._remote_refs(request.nodes, requester)
        local = [ref for ref in request.nodes if ref not in remote_refs]
        # No refs: every node, here and at the remotes; refs all remote: none of this hub's.
        nodes = self._resolve(local, requester) if local or not request.nodes else []
        delay = _delay_until(request.when)
        one = self._one_remote(remote_refs) if not nodes and delay == 0 else None
        if one is not None:
            # The remote's request now; the asker's accepted with the remote's answer, in
            # one write, if that comes within ACCEPT_WAIT (it goes alone then).  The answer
            # is passed on in the turn it is read; the task only holds the readout open.
            assert self.remote is not None
            seqnr = request.seqnr
            read = self.remote.begin(
                one[0],
                element,
                one[1],
                on_answer=lambda answer: self._send_answers(
                    requester, seqnr, [], [answer], first=accept.take()
                ),
            )
            # Made once the request is out (never called before that: answers come later).
            accept = _Accept(self.xmpp, result_iq(self.xmpp, iq, build_accepted(seqnr)))
            self._accepts[key] = accept
            task = asyncio.create_task(
                _held_open(read), name=f"readout {requester} {request.seqnr}"
            )
        else:
            accepted = build_accepted(request.seqnr, queued=delay > 0)
            send_now(self.xmpp, result_iq(self.xmpp, iq, accepted))
            task = asyncio.create_task(
                self._run(requester, request, nodes, delay, (element, remote_refs)),
                name=f"readout {requester} {request.seqnr}",
            )
            read = None
        self._readouts[key] = task
        task.add_done_callback(lambda done: self._finished(key, done, read))

    def _finished(
        self, key: tuple[str, int], task: asyncio.Task[None], read: RemoteRead | None
    ) -> None:
        if read is not None:
            read.close()  # also when the task was cancelled before it ran
        if (accept := self._accepts.pop(key, None)) is not None:
            accept.send()  # cancelled, or shut down, before the remote answered
        self._readouts.pop(key, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("readout %s of %s failed", key[1], key[0], exc_info=error)

    def _resolve(self, refs: Sequence[NodeRef], requester: str) -> list[Node]:
        visible = {node.id: node for node in self.access.visible(requester, self.hub.nodes)}
        if not refs:
            return list(visible.values())
        # A node the requester may not read is answered like one that does not exist.
        unknown = sorted({ref.node_id for ref in refs} - set(visible))
        if unknown:
            raise NodeNotFound(", ".join(unknown))
        # A nodeId named twice (other sourceId/cacheType) is one node here: ids are unique.
        return [visible[node_id] for node_id in dict.fromkeys(r.node_id for r in refs)]

    def _remote_refs(self, refs: Sequence[NodeRef], requester: str) -> dict[NodeRef, str]:
        """The refs naming a remote hub's nodes, each with its source (all of them for none)."""
        if self.remote is None:
            return {}
        sources = self.remote.sources

        def readable(source_id: str, node_id: str) -> bool:
            key = remote_node_key(source_id, node_id)
            return self.access.allows(requester, Role.READER, key)

        if not refs:  # all nodes: the remotes' too, those the requester may read
            return {
                NodeRef(n.node_id, s.id): s.id
                for s in sources
                for n in s.nodes()
                if n.readable and readable(s.id, n.node_id)
            }
        remote = {ref: ref.source_id for ref in refs if ref.source_id in sources}
        # A remote node the requester may not read here does not exist for it.
        unknown = sorted(
            ref.node_id
            for ref, source_id in remote.items()
            if (source := sources.get(source_id or "")) is None
            or source.node(ref.node_id) is None
            or not readable(source.id, ref.node_id)
        )
        if unknown:
            raise NodeNotFound(", ".join(unknown))
        return {ref: source_id for ref, source_id in remote.items() if source_id is not None}

    async def _read_remotes(
        self, original: Element, refs: dict[NodeRef, str]
    ) -> list[RemoteAnswer]:
        if self.remote is None or not refs:
            return []
        wanted: dict[str, list[str]] = {}
        for ref, source_id in refs.items():
            wanted.setdefault(source_id, [])
            if ref.node_id not in wanted[source_id]:
                wanted[source_id].append(ref.node_id)
        reads = []
        for source_id, node_ids in wanted.items():
            source = self.remote.sources.get(source_id)
            assert source is not None  # checked by _remote_refs
            reads.append(self.remote.read(source, original, node_ids))
        if len(reads) == 1:
            return [await reads[0]]  # no task for a lone remote
        return await asyncio.gather(*reads)

    def _one_remote(self, refs: dict[NodeRef, str]) -> tuple[RemoteSource, list[str]] | None:
        """The source and its nodes when ``refs`` all name one remote's nodes, else None."""
        if self.remote is None or not refs:
            return None
        source_ids = set(refs.values())
        if len(source_ids) != 1:
            return None
        source = self.remote.sources.get(source_ids.pop())
        assert source is not None  # checked by _remote_refs
        if not source.online:
            return None  # answered at once, with errors: the general way
        return source, list(dict.fromkeys(ref.node_id for ref in refs))

    async def _run(
        self,
        to: str,
        request: ReadRequest,
        nodes: list[Node],
        delay: float,
        remote: tuple[Element, dict[NodeRef, str]],
    ) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
            send_now(self.xmpp, plain_message(self.xmpp, to, build_started(request.seqnr)))
        # The hub's own nodes and the remotes' at the same time: one slow side holds up neither.
        results, answers = await asyncio.gather(
            asyncio.gather(*(self._read(node, request, to) for node in nodes)),
            self._read_remotes(*remote),
        )
        self._send_answers(to, request.seqnr, results, answers)

    def _send_answers(
        self,
        to: str,
        seqnr: int,
        results: Sequence[_NodeResult],
        answers: Sequence[RemoteAnswer],
        first: Sequence[StanzaBase] = (),
    ) -> None:
        """The ``fields``/``failure`` messages of one readout, the last one done (one write)."""
        elements: list[Element] = []
        for result in results:
            ref = NodeRef(result.node.id, result.node.source)
            if result.error is not None:
                stamp = datetime.now(UTC)
                elements.append(build_failure(seqnr, [(ref, stamp, result.error)], False))
            else:
                readings = [NodeReadings(ref, result.values)]
                elements.append(build_fields(seqnr, readings, done=False))
        if answers:  # only with remotes: configured, whose modules are loaded then
            from hubd.xmpp.remote_sensordata import build_message

        for answer in answers:
            if answer.nodes:
                shown = [self._narrowed(node, to) for node in answer.nodes]
                elements.append(build_message(seqnr, "fields", shown, False))
            if answer.errors:
                elements.append(build_message(seqnr, "failure", answer.errors, False))
        if not elements:
            elements.append(build_fields(seqnr, [], done=False))
        elements[-1].set("done", "true")  # the last message says done, whatever it carries
        send_now(self.xmpp, *first, *(plain_message(self.xmpp, to, e) for e in elements))

    def _narrowed(self, node: Element, requester: str) -> Element:
        """A remote's node as ``requester`` may see it (XEP-0324 canRead fields)."""
        from hubd.xmpp.remote_sensordata import narrowed

        key = remote_node_key(node.get("sourceId", ""), node.get("nodeId", ""))
        return narrowed(node, self.access.fields_for(requester, key, Role.READER))

    async def _read(self, node: Node, request: ReadRequest, requester: str) -> _NodeResult:
        # A provisioning server may narrow a requester to some fields (XEP-0324 canRead).
        allowed = self.access.fields_for(requester, node.id, Role.READER)
        named = [
            s
            for s in node.spec.fields
            if (not request.fields or s.name in request.fields)
            and (allowed is None or s.name in allowed)
        ]
        wanted = frozenset(s.name for s in named if request.wants(s.categories))
        pairs: list[tuple[FieldSpec, FieldValue]] = []
        if request.categories & HISTORICAL and self.history is not None:
            pairs.extend(await self._history(node, named, request))
        if not wanted:
            return _NodeResult(node, pairs)
        try:
            values = await self.hub.read(node.id, wanted)
        except DriverError as err:
            return _NodeResult(node, pairs, str(err) or type(err).__name__)
        specs = node.spec
        pairs.extend(
            (spec, v)
            for v in values
            if v.name in wanted and _within(v, request) and (spec := specs.get(v.name))
        )
        return _NodeResult(node, pairs)

    async def _history(
        self, node: Node, named: Sequence[FieldSpec], request: ReadRequest
    ) -> list[tuple[FieldSpec, FieldValue]]:
        """Stored readings between ``from`` and ``to``, flagged historicalOther."""
        assert self.history is not None
        end = _aware(request.to) or datetime.now(UTC)
        start = _aware(request.from_) or end - timedelta(days=1)
        rows = await self.history.history(
            node.id, [s.name for s in named], start.timestamp(), end.timestamp(), HISTORY_LIMIT
        )
        by_name = {s.name: replace(s, categories=HISTORY_CATEGORIES) for s in named}
        pairs = []
        for row in rows:
            spec = by_name.get(row.field)
            if spec is not None:
                pairs.append((spec, decode_value(row.value)))
        return pairs


class _Accept:
    """The asker's ``accepted`` of a readout passed on to one remote, held for its answer.

    The remote's answer (a momentary readout: a few milliseconds) and this hub's
    ``accepted`` then reach the asker in one write, and the server routes the
    remote's request with nothing of this hub's behind it in the same read.
    The asker still has ``accepted`` first, and within ACCEPT_WAIT whatever
    the remote does.
    """

    def __init__(self, xmpp: ClientXMPP, stanza: StanzaBase) -> None:
        self.xmpp = xmpp
        self._stanza: StanzaBase | None = stanza
        self._timer = asyncio.get_running_loop().call_later(ACCEPT_WAIT, self.send)

    def take(self) -> list[StanzaBase]:
        """The ``accepted`` if not written yet (then the caller writes it), else nothing."""
        if self._stanza is None:
            return []
        self._timer.cancel()
        stanza, self._stanza = self._stanza, None
        return [stanza]

    def send(self) -> None:
        """Write the ``accepted`` now unless it was."""
        if stanzas := self.take():
            send_now(self.xmpp, *stanzas)


async def _held_open(read: RemoteRead) -> None:
    """Until the remote's answer was passed on (a cancel cancels this, and the remote's)."""
    await read.done


def _aware(moment: datetime | None) -> datetime | None:
    """XEP-0323 leaves zone-less times undefined; hubd reads them as UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _delay_until(when: datetime | None) -> float:
    moment = _aware(when)
    if moment is None:
        return 0.0
    ahead = moment - datetime.now(UTC)
    if ahead > MAX_SCHEDULE_AHEAD:
        raise BadRequest("when: readouts can be scheduled at most 24 hours ahead")
    return max(ahead.total_seconds(), 0.0)


def _within(value: FieldValue, request: ReadRequest) -> bool:
    start, end = _aware(request.from_), _aware(request.to)
    return (start is None or value.timestamp >= start) and (end is None or value.timestamp <= end)
