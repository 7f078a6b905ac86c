"""How the hub words things for people: values with units, ages, device lines, replies.

Pure functions of the model (no hub, no access, no XMPP): the chat commands,
the ad-hoc forms and the chat events all word a value the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, Value

if TYPE_CHECKING:
    # Only in annotations: hubctl words values with this module and must not
    # pay for the node's import of the driver model (pydantic) at each start.
    from hubd.core.node import Node

#: Longest string value shown in a reply; serial lines can be long.
MAX_TEXT = 120

BULLET = "- "
SEPARATOR = " · "

_STATUS_ONLY = frozenset({Category.STATUS})


def ago(then: datetime, now: datetime) -> str:
    """Say how long ago ``then`` was, for people: ``just now``, ``2 min ago``, ``3 days ago``."""
    seconds = (now - then).total_seconds()
    if seconds < 10:
        return "just now"  # also a clock a little ahead of ours
    if seconds < 60:
        return f"{int(seconds)} s ago"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h ago"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} ago"


def delayed_text(text: str, happened_at: datetime, now: datetime) -> str:
    """Say that news comes late: ``text (delayed: happened 2 h ago, at 14:03 UTC)``."""
    stamp = happened_at.astimezone(UTC).strftime("%H:%M UTC")
    return f"{text} (delayed: happened {ago(happened_at, now)}, at {stamp})"


def format_value(spec: FieldSpec | None, value: Value) -> str:
    """One value for people: ``on``, ``21.5 °C``, ``45%``; numbers keep their decimals."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, Decimal):
        text = format(value, "f")  # never 1E+1: keep the decimals the sensor gave
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    elif isinstance(value, date | time):
        text = value.isoformat()
    elif isinstance(value, timedelta):
        text = _duration(value)
    elif isinstance(value, str):
        text = value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
        text = text or "(empty)"
    else:
        text = str(value)
    unit = spec.unit if spec is not None else None
    if unit and not isinstance(value, bool):
        text += unit if unit == "%" else f" {unit}"
    return text


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def format_field(spec: FieldSpec | None, value: FieldValue) -> str:
    """``state on``: the field name as people type it in ``set``, then the value."""
    return f"{value.name} {format_value(spec, value.value)}"


def device_label(node: Node) -> str:
    """``porch-light (Porch light)``, or the id alone when the name is the id."""
    return node.id if node.name == node.id else f"{node.id} ({node.name})"


def shown_values(values: Iterable[FieldValue]) -> list[FieldValue]:
    """The values worth showing: ``online`` is said separately (the line exists, or "offline")."""
    return [v for v in values if v.name != "online"]


def format_list(
    nodes: Sequence[Node], open_fields: Callable[[Node], frozenset[str] | None] | None = None
) -> str:
    """The ``list`` reply: a count, then one line per device with its latest values.

    ``open_fields`` gives, per device, the only fields to show (None: all).
    """
    offline = sum(1 for n in nodes if not n.online)
    count = f"{len(nodes)} device{'s' if len(nodes) != 1 else ''}"
    lines = [f"{count}, {offline} offline:" if offline else f"{count}:"]
    if not nodes:
        return "No devices are configured."
    for node in nodes:
        allowed = open_fields(node) if open_fields is not None else None
        lines.append(BULLET + device_label(node) + ": " + _summary(node, allowed))
    return "\n".join(lines)


def _summary(node: Node, allowed: frozenset[str] | None) -> str:
    if not node.online:
        reason = f" ({node.state_message})" if node.state_message else ""
        return f"{node.state.value}{reason}"
    values = [
        v
        for v in shown_values(node.cache.values())
        if (allowed is None or v.name in allowed) and not _quiet_status(node.spec.get(v.name), v)
    ]
    if not values:
        return "no values yet"
    return SEPARATOR.join(format_field(node.spec.get(v.name), v) for v in values)


def _quiet_status(spec: FieldSpec | None, value: FieldValue) -> bool:
    """A status field with nothing to report (``errors 0``, an empty ``last_error``).

    The one-line summary of ``list`` leaves these out; ``read`` shows them.
    """
    return spec is not None and spec.categories == _STATUS_ONLY and not value.value


def format_read(node: Node, values: Sequence[FieldValue], now: datetime) -> str:
    """The ``read`` reply: one line for one field, else a header and one line per field."""
    if not values:
        return f"{node.name}: no values yet."
    if len(values) == 1:
        value = values[0]
        spec = node.spec.get(value.name)
        return f"{node.name}: {format_field(spec, value)} ({ago(value.timestamp, now)})"
    newest = max(v.timestamp for v in values)
    header_age = ago(newest, now)
    lines = [f"{node.name} ({header_age}):"]
    for value in values:
        line = BULLET + format_field(node.spec.get(value.name), value)
        age = ago(value.timestamp, now)
        if age != header_age:
            line += f" ({age})"
        lines.append(line)
    return "\n".join(lines)


def example_value(spec: FieldSpec) -> str:
    """A value that ``spec`` accepts, to show in a hint."""
    if spec.type is FieldType.BOOLEAN:
        return "on"
    if spec.type is FieldType.ENUM:
        return spec.options[0]
    if spec.type in (FieldType.NUMERIC, FieldType.INT, FieldType.LONG):
        low, high = spec.minimum, spec.maximum
        if low is not None and high is not None:
            middle = (low + high) / 2
            if spec.type is not FieldType.NUMERIC:
                middle = middle.to_integral_value()
            return format(middle.normalize(), "f")
        return format(low if low is not None else (high if high is not None else 1), "f")
    return {
        FieldType.STRING: "hello",
        FieldType.DATE: "2024-01-31",
        FieldType.TIME: "07:30:00",
        FieldType.DATETIME: "2024-01-31T07:30:00Z",
        FieldType.DURATION: "PT5M",
    }.get(spec.type, "1")
