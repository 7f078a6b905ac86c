"""XML Schema lexical forms (xs:boolean, xs:decimal, xs:date, xs:duration, ...).

The IoT XEPs carry every value as an XML Schema lexical string.  This module
turns those strings into Python values and back, without losing what matters:
a decimal keeps the number of decimals it was written with (``10.0`` and
``10.00`` degrees are different readings, XEP-0323 §3.3), and times without a
zone stay naive.  Pure: no XMPP, no hardware.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

# PnYnMnDTnHnMnS; years and months are accepted only as whole days (365 / 30)
# would be a guess, so they are refused instead: a Thing has no calendar.
_DURATION = re.compile(
    r"^(?P<sign>-)?P(?!$)(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_boolean(text: str) -> bool:
    """Parse xs:boolean (``true``, ``false``, ``1``, ``0``)."""
    value = text.strip()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"not an xs:boolean: {text!r}")


def format_boolean(value: bool) -> str:
    """Format xs:boolean."""
    return "true" if value else "false"


def parse_decimal(text: str) -> Decimal:
    """Parse xs:decimal or xs:double, keeping the decimals as written."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def format_decimal(value: Decimal) -> str:
    """Format a decimal in plain notation (never exponent form), keeping its decimals."""
    return format(value, "f")


def parse_int(text: str, *, bits: int = 32) -> int:
    """Parse xs:int (32 bits) or xs:long (64 bits)."""
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?\d+", stripped):
        raise ValueError(f"not an integer: {text!r}")
    value = int(stripped)
    limit = 1 << (bits - 1)
    if not -limit <= value < limit:
        raise ValueError(f"integer out of {bits}-bit range: {text!r}")
    return value


def parse_date(text: str) -> date:
    """Parse xs:date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an xs:date: {text!r}") from None


def parse_time(text: str) -> time:
    """Parse xs:time (hh:mm:ss[.fff][zone])."""
    try:
        return time.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an xs:time: {text!r}") from None


def parse_datetime(text: str) -> datetime:
    """Parse xs:dateTime; a missing zone stays naive (the XEPs leave it undefined)."""
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an xs:dateTime: {text!r}") from None


def format_datetime(value: datetime) -> str:
    """Format xs:dateTime; aware values are written in UTC with ``Z``."""
    if value.tzinfo is None:
        return value.isoformat(timespec="seconds")
    utc = value.astimezone(UTC)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_duration(text: str) -> timedelta:
    """Parse xs:duration in days, hours, minutes and seconds (``PT5M``, ``P1DT2H``)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not an xs:duration in days/hours/minutes/seconds: {text!r}")
    parts = match.groupdict()
    delta = timedelta(
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=float(parts["seconds"] or 0),
    )
    return -delta if parts["sign"] else delta


def format_duration(value: timedelta) -> str:
    """Format xs:duration (``PT1H2M3S``, ``P2DT0S``)."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days = value.days
    seconds = value.seconds
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    out = f"{sign}P"
    if days:
        out += f"{days}D"
    out += "T"
    if hours:
        out += f"{hours}H"
    if minutes:
        out += f"{minutes}M"
    if value.microseconds:
        frac = f"{seconds + value.microseconds / 1_000_000:.6f}".rstrip("0")
        out += f"{frac}S"
    elif seconds or out.endswith("T"):
        out += f"{seconds}S"
    return out
