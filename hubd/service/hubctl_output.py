"""How hubctl prints: aligned lines for people, one JSON object per value for machines.

People get values worded as in chat (``on``, ``21.5 °C``), ages (``2 min ago``)
and local times; machines get ``{"device", "field", "value", "type", "unit",
"time"}`` with typed values (numbers as numbers, keeping the decimals the
sensor gave; booleans as booleans) and ``time`` in ISO 8601 UTC.  JSON is
ASCII-only (``\\u00b0C``), so it survives any locale a cron job runs in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from hubd.core import xsd
from hubd.core.model import FieldType, Value
from hubd.people.wording import ago, format_value
from hubd.xmpp.client_xml import BrowsedNode, DataSource
from hubd.xmpp.sensordata_xml import NodeRef, ParsedField

# A JSON number (RFC 8259): xs:decimal allows "+5" and ".5", JSON does not.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_GAP = "  "

Readings = Sequence[tuple[NodeRef, Sequence[ParsedField]]]
#: How a node of an answer is named for people and scripts: ``door``, ``garage/door``.
Names = Callable[[NodeRef], str]
#: A remote hub's data source with its devices, as ``list`` shows it.
RemoteGroup = tuple[DataSource, Sequence[BrowsedNode]]


def plain(node: NodeRef) -> str:
    """A node named by its id alone (the hub's own)."""
    return node.node_id


# --- values ---------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a zoneless time is the reader's local time (XEP-0323 §1.8)."""
    return moment.astimezone(UTC)


def value_text(field: ParsedField) -> str:
    """A value for people, with its unit: ``on``, ``21.5 °C``, ``45%``."""
    text = format_value(None, field.value)
    if field.type is FieldType.DATETIME and isinstance(field.value, datetime):
        text = local_time(field.value)
    if field.unit and not isinstance(field.value, bool):
        text += field.unit if field.unit == "%" else f" {field.unit}"
    return text


def local_time(moment: datetime) -> str:
    """``2026-12-03 09:10:00``, in this machine's time zone."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def json_value(field: ParsedField) -> str:
    """The value as JSON text: typed, numbers exactly as the hub wrote them."""
    value: Value = field.value
    if field.type is FieldType.NUMERIC:
        lexical = field.lexical.strip()
        return lexical if _JSON_NUMBER.fullmatch(lexical) else format(value, "f")
    if isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, datetime):
        return json.dumps(xsd.format_datetime(utc(value)))
    if isinstance(value, date | time | timedelta):
        return json.dumps(field.lexical.strip())
    return json.dumps(str(value))  # pragma: no cover - Value has no other kind


def json_line(device: str, field: ParsedField) -> str:
    """One value as one line of JSON."""
    parts = [
        ("device", json.dumps(device)),
        ("field", json.dumps(field.name)),
        ("value", json_value(field)),
        ("type", json.dumps(field.type.value)),
        ("unit", json.dumps(field.unit or None)),
        ("time", json.dumps(xsd.format_datetime(utc(field.timestamp)))),
    ]
    return "{" + ", ".join(f'"{key}": {text}' for key, text in parts) + "}"


def json_object(**items: object) -> str:
    """A flat JSON object on one line (browse), keys in the order given."""
    return json.dumps(items)


def aligned(rows: Iterable[Sequence[str]]) -> list[str]:
    """Rows as lines with their columns aligned (the last column is not padded)."""
    table = [list(row) for row in rows]
    if not table:
        return []
    width = max(len(row) for row in table)
    # A row's last cell is never padded, so it does not widen its column either.
    sizes = [max((len(r[i]) for r in table if i < len(r) - 1), default=0) for i in range(width)]
    lines = []
    for row in table:
        cells = [cell.ljust(sizes[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append(_GAP.join(cells).rstrip())
    return lines


# --- commands -------------------------------------------------------------------------


def reading_lines(
    readings: Readings, now: datetime, as_json: bool, *, name: Names = plain
) -> list[str]:
    """``read``: one line per value (device, field, value, age), in the hub's order."""
    if as_json:
        return [json_line(name(node), f) for node, fields in readings for f in fields]
    return aligned(
        [name(node), f.name, value_text(f), ago(utc(f.timestamp), now)]
        for node, fields in readings
        for f in fields
    )


def list_lines(
    nodes: Sequence[BrowsedNode] | None,
    readings: Readings,
    failed: dict[str, str],
    now: datetime,
    as_json: bool,
    *,
    name: Names = plain,
    remotes: Sequence[RemoteGroup] = (),
) -> list[str]:
    """``list``: every device, named, with its latest values (or why it has none).

    The hub's own devices first, then each remote hub's under its data source
    id, as chat's ``list`` does.  ``failed`` is keyed by device name.
    """
    if as_json:
        return reading_lines(readings, now, as_json=True, name=name)
    by_node: dict[str, list[ParsedField]] = {}
    for ref, values in readings:
        by_node.setdefault(name(ref), []).extend(values)
    remote_names = {
        f"{source.source_id}/{node.node_id}" for source, group in remotes for node in group
    }
    known = nodes or [_unnamed(key) for key in by_node if key not in remote_names]
    rows = _device_rows([("", n) for n in known], by_node, failed, now)
    sections: list[str] = []
    for source, group in remotes:
        named = "" if source.name == source.source_id else f"  ({source.name})"
        sections.append(f"{source.source_id}{named}")
        devices = [(f"{source.source_id}/", n) for n in group]
        table = aligned(_device_rows(devices, by_node, failed, now))
        sections.extend(f"  {line}" for line in table)
    for key, values in by_node.items():  # read, though the tree did not list it
        rows.extend([key, f.name, value_text(f), ago(utc(f.timestamp), now)] for f in values)
    return aligned(rows) + sections


def _device_rows(
    devices: Sequence[tuple[str, BrowsedNode]],
    by_node: dict[str, list[ParsedField]],
    failed: dict[str, str],
    now: datetime,
) -> list[list[str]]:
    """The rows of ``devices`` (each with its name's prefix); their values leave ``by_node``."""
    rows: list[list[str]] = []
    for prefix, device in devices:
        key = prefix + device.node_id
        label = key if device.name == device.node_id else f"{key} ({device.name})"
        # As in chat's list: "online" goes without saying; an offline device says so.
        mine = [f for f in by_node.pop(key, []) if not (f.name == "online" and f.value is True)]
        if key in failed:
            rows.append([label, f"(failed: {failed[key]})"])
        elif not mine:
            why = "no values" if device.state == "None" else device.state
            rows.append([label, f"({why})"])
        rows.extend(
            [label if i == 0 else "", f.name, value_text(f), ago(utc(f.timestamp), now)]
            for i, f in enumerate(mine)
        )
    return rows


def _unnamed(node_id: str) -> BrowsedNode:
    return BrowsedNode(node_id, node_id, "", "None", False, True, False, None)


def event_lines(readings: Readings, as_json: bool, *, name: Names = plain) -> list[str]:
    """``watch``: one line per event (one timestamp of one node), or one JSON line per value."""
    if as_json:
        return [json_line(name(node), f) for node, fields in readings for f in fields]
    lines = []
    for node, fields in readings:
        for moment, group in _by_time(fields):
            values = ", ".join(f"{f.name} {value_text(f)}" for f in group)
            lines.append(f"{local_time(moment)}{_GAP}{name(node)}{_GAP}{values}")
    return lines


def event_count(readings: Readings) -> int:
    """How many events a message brought: one per node and timestamp."""
    return sum(len(_by_time(fields)) for _, fields in readings)


def _by_time(fields: Sequence[ParsedField]) -> list[tuple[datetime, list[ParsedField]]]:
    groups: dict[datetime, list[ParsedField]] = {}
    for field in fields:
        groups.setdefault(field.timestamp, []).append(field)
    return list(groups.items())


def history_lines(readings: Readings, as_json: bool, *, name: Names = plain) -> list[str]:
    """``history``: one line per stored value, oldest first."""
    values = sorted(
        ((name(node), f) for node, fields in readings for f in fields),
        key=lambda item: utc(item[1].timestamp),
    )
    if as_json:
        return [json_line(device, f) for device, f in values]
    return aligned([local_time(f.timestamp), device, f.name, value_text(f)] for device, f in values)


def browse_lines(
    tree: Sequence[tuple[int, DataSource, Sequence[BrowsedNode]]], as_json: bool
) -> list[str]:
    """``browse``: each data source, indented under its parent, with its nodes."""
    if as_json:
        return [
            json_object(
                source=source.source_id,
                device=node.node_id,
                name=node.name,
                type=node.node_type or None,
                state=node.state,
                readable=node.readable,
                controllable=node.controllable,
                parent=node.parent_id,
            )
            for _, source, nodes in tree
            for node in nodes
        ]
    lines = []
    for depth, source, nodes in tree:
        indent = "  " * depth
        named = "" if source.name == source.source_id else f"  ({source.name})"
        lines.append(f"{indent}{source.source_id}{named}")
        rows = [
            [
                node.node_id,
                node.name if node.name != node.node_id else "",
                node.node_type,
                _abilities(node),
            ]
            for node in nodes
        ]
        lines.extend(f"{indent}  {line}" for line in aligned(rows))
    return lines


def _abilities(node: BrowsedNode) -> str:
    abilities = (("readable", node.readable), ("controllable", node.controllable))
    words = [word for word, able in abilities if able]
    if node.state != "None":
        words.append(node.state)
    if node.parent_id:
        words.append(f"under {node.parent_id}")
    return ", ".join(words)
