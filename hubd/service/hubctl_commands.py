"""What each hubctl command asks the hub, and what it prints.

One request at a time over one :class:`~hubd.xmpp.hubctl_client.HubSession`.
Values go to ``out``; reasons go to ``err``; the return value is the exit
status (0 done, 1 the hub refused or a node failed).  Refusals, timeouts and
lost connections are raised (``hubd.errors``) and turned into statuses by the
command's ``main``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TextIO
from xml.etree.ElementTree import Element

from hubd.core.model import FieldSpec, FieldType, Value, format_lexical
from hubd.errors import HubRefused, InvalidValue, UsageError
from hubd.service import hubctl_output as output
from hubd.service.hubctl_names import ROOT_SOURCE, DeviceName, Namer, own_sources
from hubd.xmpp.client_xml import (
    HISTORICAL,
    BrowsedNode,
    DataSource,
    build_concentrator,
    build_req,
    build_set,
    build_subscribe,
    check_result,
    parse_data_sources,
    parse_nodes,
)
from hubd.xmpp.control_xml import PARAMETER_ELEMENT
from hubd.xmpp.hubctl_client import HubSession, Readings, Readout, new_seqnr
from hubd.xmpp.sensordata_xml import NodeRef, ParsedField

#: Most data sources and nodes one browse walks (a tree is data from another party).
MAX_BROWSED = 2000

_PERIOD = re.compile(r"^(\d+)\s*(s|min|m|h|d|w)$")
_PERIOD_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TRUE_WORDS = frozenset({"true", "on", "yes", "open", "high"})
_FALSE_WORDS = frozenset({"false", "off", "no", "closed", "low"})
_NOT_CONCENTRATOR = frozenset(
    {"feature-not-implemented", "service-unavailable", "NotImplemented", "bad-answer"}
)


@dataclass
class Console:
    """Where a command writes, and how."""

    out: TextIO
    err: TextIO
    as_json: bool
    broken_pipe: bool = field(default=False)

    def print(self, lines: Sequence[str], *, flush: bool = False) -> bool:
        """Write lines to ``out``; False once the reader has gone (a closed pipe)."""
        if self.broken_pipe:
            return False
        try:
            for line in lines:
                self.out.write(line + "\n")
            if flush:
                self.out.flush()
        except BrokenPipeError:
            self.broken_pipe = True
            return False
        return True

    def warn(self, text: str) -> None:
        """A reason on stderr."""
        self.err.write(f"hubctl: {text}\n")


def parse_period(text: str) -> timedelta:
    """``90s``, ``10min``, ``1h``, ``24h``, ``7d``, ``2w`` as a duration; UsageError otherwise."""
    match = _PERIOD.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"not a period: {text!r} (write it like 90s, 10min, 1h, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _PERIOD_UNITS[match.group(2)])


# --- read and list ---------------------------------------------------------------------


def _current(readout: Readout, device: DeviceName | None, names: Sequence[str]) -> Readings:
    """The values asked for: the hub's answer filtered, since requests are only hints."""
    wanted = set(names)
    kept: Readings = []
    for node, fields in readout.readings:
        if device is not None and not device.matches(node):
            continue
        chosen = [
            f
            for f in fields
            if not (f.categories & HISTORICAL) and (not wanted or f.name in wanted)
        ]
        if chosen:
            kept.append((node, chosen))
    return kept


async def read(
    session: HubSession,
    console: Console,
    hub: str,
    device: DeviceName | None,
    names: Sequence[str],
) -> int:
    """``read``: a momentary readout of one device (some of its fields) or of all devices."""
    seqnr = new_seqnr()
    req = build_req(seqnr, nodes=[device.ref] if device else [], fields=names)
    namer: output.Names
    if device is None:
        # Which answers are the hub's own devices and which a remote's: asked at the same time.
        readout, own = await asyncio.gather(
            session.readout(hub, req, seqnr), _own_nodes(session, hub)
        )
        namer = Namer(None if own is None else own_sources(own))
    else:
        readout = await session.readout(hub, req, seqnr)
        namer = _named(device)
    readings = _current(readout, device, names)
    console.print(output.reading_lines(readings, datetime.now(UTC), console.as_json, name=namer))
    status = _report_failures(console, readout, namer)
    if device is not None and readout.failures == []:
        found = {f.name for _, fields in readings for f in fields}
        for name in names:
            if name not in found:
                console.warn(f"{device} has no field {name!r} (or no value of it)")
                status = 1
    return status


def _named(device: DeviceName) -> output.Names:
    """Names every node of an answer about ``device`` alone as it was typed."""
    return lambda _node: str(device)


def _report_failures(console: Console, readout: Readout, name: output.Names) -> int:
    for failure in readout.failures:
        console.warn(f"{name(failure.ref)}: {failure.text}")
    return 1 if readout.failures else 0


async def _own_nodes(session: HubSession, hub: str) -> list[BrowsedNode] | None:
    """The hub's own devices (its XEP-0326 root); None from a device that is no concentrator."""
    try:
        answer = await session.iq(hub, build_concentrator("getAllNodes", sourceId=ROOT_SOURCE))
        return parse_nodes(check_result(answer, "getAllNodes"))
    except HubRefused as err:
        # A single Thing, or a device that is no concentrator: the readout alone says enough.
        if err.condition not in _NOT_CONCENTRATOR:
            raise
        return None


async def _remote_groups(
    session: HubSession, hub: str, own: frozenset[str]
) -> list[output.RemoteGroup]:
    """The remote hubs' data sources (children of the root not the hub's own), with devices."""
    try:
        answer = await session.iq(
            hub, build_concentrator("getChildDataSources", sourceId=ROOT_SOURCE)
        )
        children = parse_data_sources(check_result(answer, "getChildDataSources"))
    except HubRefused as err:
        if err.condition not in _NOT_CONCENTRATOR:
            raise
        return []
    remotes = [source for source in children if source.source_id not in own]

    async def devices(source: DataSource) -> list[BrowsedNode]:
        request = build_concentrator("getAllNodes", sourceId=source.source_id)
        return parse_nodes(check_result(await session.iq(hub, request), "getAllNodes"))

    found = await asyncio.gather(*(devices(source) for source in remotes))
    return list(zip(remotes, found, strict=True))


async def list_devices(session: HubSession, console: Console, hub: str) -> int:
    """``list``: every device (named by the XEP-0326 tree) with its latest values.

    The hub's own devices, then each remote hub's (``garage/door``) under its
    data source, as chat's ``list``; the tree and the readout asked at once.
    """
    seqnr = new_seqnr()

    async def tree() -> tuple[list[BrowsedNode] | None, list[output.RemoteGroup]]:
        nodes = await _own_nodes(session, hub)
        if nodes is None:
            return None, []
        return nodes, await _remote_groups(session, hub, own_sources(nodes))

    (nodes, remotes), readout = await asyncio.gather(
        tree(), session.readout(hub, build_req(seqnr), seqnr)
    )
    namer = Namer(None if nodes is None else own_sources(nodes))
    failed = {namer(f.ref): f.text for f in readout.failures}
    lines = output.list_lines(
        nodes,
        _current(readout, None, ()),
        failed,
        datetime.now(UTC),
        console.as_json,
        name=namer,
        remotes=remotes,
    )
    console.print(lines)
    if console.as_json:
        return _report_failures(console, readout, namer)
    return 1 if failed else 0


# --- set ----------------------------------------------------------------------------------


def _guess_type(text: str) -> FieldType:
    word = text.strip().lower()
    if word in _TRUE_WORDS or word in _FALSE_WORDS:
        return FieldType.BOOLEAN
    try:
        number = Decimal(word)
    except InvalidOperation:
        return FieldType.STRING
    return FieldType.NUMERIC if number.is_finite() else FieldType.STRING


def encode_value(kind: FieldType, text: str) -> tuple[str, Value]:
    """The lexical form and typed value of ``text`` for a field of ``kind``, as chat reads it.

    ``on``/``off`` and the other words chat knows become booleans; numbers keep
    their decimals.  Text that does not fit ``kind`` is sent as given: the hub
    is the judge, and its refusal says why.
    """
    if kind in (FieldType.STRING, FieldType.ENUM):
        return text, text
    # FieldSpec.coerce is how every interface of the hub reads a value; the
    # name is only a placeholder for its messages (wire names need not be lower_snake).
    spec = FieldSpec(name="value", type=kind)
    try:
        value = spec.coerce(text)
    except InvalidValue:
        return text, text
    return format_lexical(kind, value), value


async def set_value(
    session: HubSession, console: Console, hub: str, device: DeviceName, name: str, text: str
) -> int:
    """``set``: XEP-0325 of one field, typed after a readout of that field."""
    seqnr = new_seqnr()
    probe = await session.readout(hub, build_req(seqnr, nodes=[device.ref], fields=[name]), seqnr)
    known = next(
        (f for node, fields in _current(probe, device, [name]) for f in fields if f.name == name),
        None,
    )
    kind = known.type if known is not None else _guess_type(text)
    lexical, value = encode_value(kind, text)
    await session.iq(hub, build_set(device.ref, PARAMETER_ELEMENT[kind], name, lexical), "set")
    result = ParsedField(
        name=name,
        type=kind,
        value=value,
        lexical=lexical,
        timestamp=datetime.now(UTC),
        categories=frozenset(),
        quality=frozenset(),
        unit=known.unit if known is not None else None,
    )
    if console.as_json:
        console.print([output.json_line(str(device), result)])
    else:
        console.print(output.aligned([[str(device), name, output.value_text(result)]]))
    return 0


# --- watch ---------------------------------------------------------------------------------


async def watch(
    session: HubSession,
    console: Console,
    hub: str,
    device: DeviceName,
    name: str | None,
    *,
    changed_by: str | None,
    count: int | None,
    duration: float | None,
) -> int:
    """``watch``: subscribe to a device's events and print each as it comes."""
    seen = 0

    def on_event(readings: Readings) -> bool:
        nonlocal seen
        chosen = [
            (node, [f for f in fields if name is None or f.name == name])
            for node, fields in readings
            if device.matches(node)
        ]
        chosen = [(node, fields) for node, fields in chosen if fields]
        if not chosen:
            return True
        lines = output.event_lines(chosen, console.as_json, name=_named(device))
        if not console.print(lines, flush=True):
            return False  # the reader of our output has gone: stop, and unsubscribe
        seen += output.event_count(chosen)
        return count is None or seen < count

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        seqnr = new_seqnr()
        subscribe = build_subscribe(seqnr, device.ref, name, changed_by)
        await session.watch(hub, subscribe, seqnr, on_event, stop, duration)
    finally:
        for number in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(number)
    return 0


# --- history --------------------------------------------------------------------------------


async def history(
    session: HubSession,
    console: Console,
    hub: str,
    device: DeviceName,
    name: str | None,
    since: timedelta,
) -> int:
    """``history``: the stored values of a device (one field of it) over a period."""
    end = datetime.now(UTC)
    start = end - since
    seqnr = new_seqnr()
    req = build_req(
        seqnr,
        nodes=[device.ref],
        fields=[name] if name else [],
        historical=True,
        start=start,
        end=end,
    )
    readout = await session.readout(hub, req, seqnr)
    kept: list[tuple[NodeRef, Sequence[ParsedField]]] = []
    for node, fields in readout.readings:
        chosen = [
            f
            for f in fields
            if device.matches(node)
            and (name is None or f.name == name)
            # Requests are hints: keep stored values of the period only.
            and f.categories & HISTORICAL
            and start <= output.utc(f.timestamp) <= end
        ]
        if chosen:
            kept.append((node, chosen))
    if not kept and not readout.failures:
        what = f"{device}.{name}" if name else device
        console.warn(f"no stored values of {what} in that period")
    console.print(output.history_lines(kept, console.as_json, name=_named(device)))
    return _report_failures(console, readout, _named(device))


# --- browse ---------------------------------------------------------------------------------


async def browse(session: HubSession, console: Console, hub: str) -> int:
    """``browse``: the XEP-0326 tree, data sources and their nodes."""
    tree: list[tuple[int, DataSource, list[BrowsedNode]]] = []
    budget = [MAX_BROWSED]

    async def ask(command: str, **attrs: str) -> Element:
        if budget[0] <= 0:
            raise HubRefused("too-large", f"the tree has more than {MAX_BROWSED} entries")
        budget[0] -= 1
        answer = await session.iq(hub, build_concentrator(command, **attrs))
        return check_result(answer, command)

    async def nodes_of(source_id: str) -> list[BrowsedNode]:
        found: list[BrowsedNode] = []
        pending = parse_nodes(await ask("getRootNodes", sourceId=source_id))
        while pending:
            node = pending.pop(0)
            found.append(node)
            if node.has_children:
                answer = await ask("getChildNodes", sourceId=source_id, nodeId=node.node_id)
                pending[:0] = parse_nodes(answer)
        return found

    async def visit(source: DataSource, depth: int) -> None:
        tree.append((depth, source, await nodes_of(source.source_id)))
        if source.has_children:
            answer = await ask("getChildDataSources", sourceId=source.source_id)
            for child in parse_data_sources(answer):
                await visit(child, depth + 1)

    for root in parse_data_sources(await ask("getRootDataSources")):
        await visit(root, 0)
    console.print(output.browse_lines(tree, console.as_json))
    return 0
