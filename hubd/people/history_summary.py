"""The ``history`` reply: one field's stored readings over a period, summed up for people.

Pure: readings in, words out (no store, no hub).  Numbers give the lowest and
highest with their times, the mean of the readings, the latest and how many;
booleans give how often they turned on and off and when last; other fields
the latest value and how often it changed.  Times are the hub's local time.

The boundaries are subjects of their own:

* no reading in the period, but one before it: the value held through the
  whole period (and since when) is said, not "no history";
* readings stamped after now (a clock that was ahead, then stepped back, as
  a Pi without a clock battery does at its first NTP sync) are left out of the
  figures and counted;
* readings arrive in any order (the clock may step between them): they are
  sorted by time first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal

from hubd.core.model import FieldSpec, FieldType, Value, parse_lexical
from hubd.people.wording import ago, format_value

Reading = tuple[float, str, str]  # (epoch seconds, XEP-0323 type, lexical value)

_NUMBERS = (FieldType.NUMERIC.value, FieldType.INT.value, FieldType.LONG.value)


@dataclass(frozen=True, slots=True)
class Period:
    """How far back a summary or a chart looks, and how people say it."""

    seconds: float
    words: str  # "24 h", "7 days"


PERIODS = {"1h": "1 h", "24h": "24 h", "7d": "7 days", "30d": "30 days"}
DEFAULT_PERIOD = "24h"
_UNITS = {"h": 3600, "d": 86400}
#: Longest period asked for (longer than any history kept by default).
MAX_PERIOD = 366 * 86400


def parse_period(word: str) -> Period | None:
    """``1h``, ``24h``, ``7d``, ``30d`` (any number of hours or days): the period; else None."""
    text = word.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        return None
    count = int(text[:-1])
    seconds = count * _UNITS[text[-1]]
    if not 0 < seconds <= MAX_PERIOD:
        return None
    unit = "h" if text[-1] == "h" else ("day" if count == 1 else "days")
    return Period(seconds, f"{count} {unit}")


def clock_time(ts: float, now: datetime, zone: tzinfo | None = None) -> str:
    """A moment for people, in the hub's zone: ``14:03`` today, ``Mon 14:03`` this week,
    ``24 Nov 14:03`` before."""
    moment = datetime.fromtimestamp(ts, zone).astimezone(zone)
    local_now = now.astimezone(zone) if zone is not None else now.astimezone()
    if moment.date() == local_now.date():
        return moment.strftime("%H:%M")
    if timedelta(0) <= local_now - moment < timedelta(days=6):
        return moment.strftime("%a %H:%M")
    return moment.strftime("%d %b %H:%M")


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def summarise(
    spec: FieldSpec,
    readings: Sequence[Reading],
    before: Reading | None,
    *,
    start: float,
    now: datetime,
    zone: tzinfo | None = None,
) -> str:
    """One field's line of the ``history`` reply (without the bullet).

    ``readings`` are those stamped from ``start`` on (any order, later ones
    than ``now`` included); ``before`` is the last one before ``start``.
    """
    end = now.timestamp()
    ahead = sum(1 for r in readings if r[0] > end)
    within = sorted((r for r in readings if start <= r[0] <= end), key=lambda r: r[0])
    note = (
        f" ({ahead} reading{'s' if ahead != 1 else ''} stamped after now left out:"
        " the clock was ahead)"
        if ahead
        else ""
    )
    if not within:
        if before is None:
            return f"{spec.name}: no readings{note}"
        held = format_value(spec, _value(before))
        since = datetime.fromtimestamp(before[0], UTC)
        return (
            f"{spec.name}: no new readings; {held} all along"
            f" (since {clock_time(before[0], now, zone)}, {ago(since, now)}){note}"
        )
    count = f"{len(within)} reading{'s' if len(within) != 1 else ''}"
    if within[-1][1] == FieldType.BOOLEAN.value:
        return f"{spec.name}: {_switches(spec, within, before, now, zone)}; {count}{note}"
    if within[-1][1] in _NUMBERS:
        return f"{spec.name}: {_numbers(spec, within, now, zone)}; {count}{note}"
    latest = within[-1]
    changes = _changes(within, before)
    return (
        f"{spec.name}: latest {format_value(spec, _value(latest))}"
        f" ({clock_time(latest[0], now, zone)}), changed {changes} time"
        f"{'s' if changes != 1 else ''}; {count}{note}"
    )


def _value(reading: Reading) -> Value:
    return parse_lexical(FieldType(reading[1]), reading[2])


def _numbers(spec: FieldSpec, within: list[Reading], now: datetime, zone: tzinfo | None) -> str:
    values = [(r[0], Decimal(r[2])) for r in within if r[1] in _NUMBERS]
    latest = values[-1]
    if len(values) == 1:
        return f"{format_value(spec, latest[1])} at {clock_time(latest[0], now, zone)}"
    low = min(values, key=lambda p: p[1])  # the first time it was lowest
    high = max(values, key=lambda p: p[1])
    places = max(_decimals(v) for _, v in values) + 1
    mean = (sum((v for _, v in values), Decimal(0)) / len(values)).quantize(
        Decimal(1).scaleb(-places)
    )
    return (
        f"min {format_value(spec, low[1])} ({clock_time(low[0], now, zone)}),"
        f" max {format_value(spec, high[1])} ({clock_time(high[0], now, zone)}),"
        f" mean {format_value(spec, mean)};"
        f" latest {format_value(spec, latest[1])} ({clock_time(latest[0], now, zone)})"
    )


def _changes(within: list[Reading], before: Reading | None) -> int:
    previous = before[2] if before is not None else within[0][2]
    changes = 0
    for reading in within:
        if reading[2] != previous:
            changes += 1
        previous = reading[2]
    return changes


def _switches(
    spec: FieldSpec,
    within: list[Reading],
    before: Reading | None,
    now: datetime,
    zone: tzinfo | None,
) -> str:
    previous: str | None = before[2] if before is not None else None
    turned: dict[bool, list[float]] = {True: [], False: []}
    for ts, _, text in within:
        value = text in ("true", "1")
        if previous is not None and (previous in ("true", "1")) != value:
            turned[value].append(ts)
        previous = text
    parts = []
    for value in (True, False):
        times = turned[value]
        word = format_value(spec, value)
        if times:
            plural = "s" if len(times) != 1 else ""
            parts.append(
                f"turned {word} {len(times)} time{plural}, last {clock_time(times[-1], now, zone)}"
            )
    if not parts:
        parts.append("no changes")
    last = within[-1]
    parts.append(f"now {format_value(spec, last[2] in ('true', '1'))}")
    return "; ".join(parts)
