"""The pure model of a concentrator: field descriptions, values, node states.

No XMPP and no hardware here.  A driver describes each field it exposes with a
:class:`FieldSpec` (what it is called, its type, unit, range, whether it can be
written), in the manner of Home Assistant's entity descriptions; values travel
as :class:`FieldValue`.  Numbers are :class:`~decimal.Decimal` so that the
number of decimals a sensor reports survives all the way to the wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum

from hubd.core import xsd
from hubd.errors import InvalidValue

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

Value = bool | int | Decimal | str | datetime | date | time | timedelta


class FieldType(StrEnum):
    """XEP-0323 field value types (the element names on the wire)."""

    NUMERIC = "numeric"
    BOOLEAN = "boolean"
    INT = "int"
    LONG = "long"
    STRING = "string"
    ENUM = "enum"
    DATE = "date"
    TIME = "time"
    DATETIME = "dateTime"
    DURATION = "duration"


class Category(StrEnum):
    """XEP-0323 field categories ("field types"): they combine."""

    MOMENTARY = "momentary"
    PEAK = "peak"
    STATUS = "status"
    COMPUTED = "computed"
    IDENTITY = "identity"
    HISTORICAL_SECOND = "historicalSecond"
    HISTORICAL_MINUTE = "historicalMinute"
    HISTORICAL_HOUR = "historicalHour"
    HISTORICAL_DAY = "historicalDay"
    HISTORICAL_WEEK = "historicalWeek"
    HISTORICAL_MONTH = "historicalMonth"
    HISTORICAL_QUARTER = "historicalQuarter"
    HISTORICAL_YEAR = "historicalYear"
    HISTORICAL_OTHER = "historicalOther"


class Quality(StrEnum):
    """XEP-0323 quality-of-service flags, in the spec's order of importance."""

    MISSING = "missing"
    IN_PROGRESS = "inProgress"
    AUTOMATIC_ESTIMATE = "automaticEstimate"
    MANUAL_ESTIMATE = "manualEstimate"
    MANUAL_READOUT = "manualReadout"
    AUTOMATIC_READOUT = "automaticReadout"
    TIME_OFFSET = "timeOffset"
    WARNING = "warning"
    ERROR = "error"
    SIGNED = "signed"
    INVOICED = "invoiced"
    END_OF_SERIES = "endOfSeries"
    POWER_FAILURE = "powerFailure"
    INVOICE_CONFIRMED = "invoiceConfirmed"


class NodeState(StrEnum):
    """Where a node stands, as hubd sees it."""

    STARTING = "starting"
    ONLINE = "online"
    OFFLINE = "offline"
    ERROR = "error"


_INT_BITS = {FieldType.INT: 32, FieldType.LONG: 64}
_WORDS_TRUE = frozenset({"true", "on", "1", "yes", "open", "high"})
_WORDS_FALSE = frozenset({"false", "off", "0", "no", "closed", "low"})


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """What one field of a node is: the description a driver gives of it.

    ``name`` is lower_snake and public API.  ``unit`` and ``decimals`` apply to
    numeric fields; ``minimum``/``maximum`` bound numeric and integer fields,
    ``options`` lists the values of an enum.  A ``writable`` field is also an
    XEP-0325 control parameter of the same name.
    """

    name: str
    type: FieldType
    unit: str | None = None
    decimals: int | None = None
    categories: frozenset[Category] = frozenset({Category.MOMENTARY})
    writable: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    options: tuple[str, ...] = ()
    label: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if not FIELD_NAME.match(self.name):
            raise ValueError(f"field name must be lower_snake: {self.name!r}")
        if self.type is FieldType.ENUM and not self.options:
            raise ValueError(f"enum field {self.name!r} needs options")

    @property
    def display_name(self) -> str:
        """A name for people: the label, or the field name with spaces."""
        return self.label or self.name.replace("_", " ").capitalize()

    def coerce(self, raw: object) -> Value:
        """Return ``raw`` as a valid value of this field, or raise InvalidValue.

        Accepts the typed value or its text (from chat or from a stanza), so
        every interface validates in the same place.
        """
        try:
            value = self._convert(raw)
        except (ValueError, TypeError) as err:
            raise InvalidValue(
                f"{self.name}: expected {self._expected()}, got {raw!r}", field=self.name
            ) from err
        self._check_range(value)
        return value

    def _expected(self) -> str:
        if self.type is FieldType.ENUM:
            return "one of " + ", ".join(self.options)
        if self.type is FieldType.BOOLEAN:
            return "on/off (true/false)"
        return {
            FieldType.NUMERIC: "a number",
            FieldType.INT: "a whole number",
            FieldType.LONG: "a whole number",
            FieldType.STRING: "text",
            FieldType.DATE: "a date (YYYY-MM-DD)",
            FieldType.TIME: "a time (hh:mm:ss)",
            FieldType.DATETIME: "a date and time (YYYY-MM-DDThh:mm:ssZ)",
            FieldType.DURATION: "a duration (PT5M, PT30S)",
        }[self.type]

    def _convert(self, raw: object) -> Value:
        kind = self.type
        if kind is FieldType.BOOLEAN:
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, int | Decimal) and raw in (0, 1):
                return bool(raw)
            if isinstance(raw, str):
                word = raw.strip().lower()
                if word in _WORDS_TRUE:
                    return True
                if word in _WORDS_FALSE:
                    return False
            raise ValueError(raw)
        if kind is FieldType.NUMERIC:
            if isinstance(raw, bool):
                raise TypeError(raw)
            if isinstance(raw, Decimal):
                value = raw
            elif isinstance(raw, int):
                value = Decimal(raw)
            elif isinstance(raw, float):
                value = Decimal(repr(raw))
            elif isinstance(raw, str):
                value = xsd.parse_decimal(raw)
            else:
                raise TypeError(raw)
            if not value.is_finite():
                raise ValueError(raw)
            if self.decimals is not None and isinstance(raw, float):
                value = value.quantize(Decimal(1).scaleb(-self.decimals))
            return value
        if kind in _INT_BITS:
            if isinstance(raw, bool):
                raise TypeError(raw)
            if isinstance(raw, int):
                text = str(raw)
            elif isinstance(raw, Decimal) and raw == raw.to_integral_value():
                text = str(int(raw))
            elif isinstance(raw, str):
                text = raw
            else:
                raise TypeError(raw)
            return xsd.parse_int(text, bits=_INT_BITS[kind])
        if kind is FieldType.STRING:
            if not isinstance(raw, str):
                raise TypeError(raw)
            return raw
        if kind is FieldType.ENUM:
            if not isinstance(raw, str):
                raise TypeError(raw)
            for option in self.options:
                if option.lower() == raw.strip().lower():
                    return option
            raise ValueError(raw)
        return self._convert_temporal(raw)

    def _convert_temporal(self, raw: object) -> Value:
        kind = self.type
        if kind is FieldType.DATETIME:
            if isinstance(raw, datetime):
                return raw
            if isinstance(raw, str):
                return xsd.parse_datetime(raw)
        elif kind is FieldType.DATE:
            if isinstance(raw, date) and not isinstance(raw, datetime):
                return raw
            if isinstance(raw, str):
                return xsd.parse_date(raw)
        elif kind is FieldType.TIME:
            if isinstance(raw, time):
                return raw
            if isinstance(raw, str):
                return xsd.parse_time(raw)
        elif kind is FieldType.DURATION:
            if isinstance(raw, timedelta):
                return raw
            if isinstance(raw, str):
                return xsd.parse_duration(raw)
        raise TypeError(raw)

    def _check_range(self, value: Value) -> None:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return
        if self.minimum is not None and value < self.minimum:
            raise InvalidValue(
                f"{self.name}: {value} is below the minimum {self.minimum}", field=self.name
            )
        if self.maximum is not None and value > self.maximum:
            raise InvalidValue(
                f"{self.name}: {value} is above the maximum {self.maximum}", field=self.name
            )


def value_type(value: Value) -> FieldType:
    """The field type a Python value naturally has (int: long, Decimal: numeric)."""
    if isinstance(value, bool):
        return FieldType.BOOLEAN
    if isinstance(value, int):
        return FieldType.LONG
    if isinstance(value, Decimal):
        return FieldType.NUMERIC
    if isinstance(value, datetime):
        return FieldType.DATETIME
    if isinstance(value, date):
        return FieldType.DATE
    if isinstance(value, time):
        return FieldType.TIME
    if isinstance(value, timedelta):
        return FieldType.DURATION
    return FieldType.STRING


def infer_field(name: str, value: Value) -> FieldSpec | None:
    """Describe a field first seen as ``value`` (for drivers whose fields come from the data).

    Returns None when the name is not lower_snake: such a field cannot be public API.
    """
    if not FIELD_NAME.match(name):
        return None
    return FieldSpec(name=name, type=value_type(value))


def format_lexical(kind: FieldType, value: Value) -> str:
    """The XML Schema lexical form of ``value`` as a field of type ``kind`` (TypeError if not)."""
    # bool is an int subclass: settle it first so later checks need not care.
    if isinstance(value, bool) != (kind is FieldType.BOOLEAN):
        raise TypeError(f"a {type(value).__name__} is not a value of a {kind} field")
    if isinstance(value, bool):
        return xsd.format_boolean(value)
    if kind is FieldType.NUMERIC and isinstance(value, Decimal | int):
        return xsd.format_decimal(Decimal(value))
    if kind in _INT_BITS and isinstance(value, int):
        return str(value)
    if kind in (FieldType.STRING, FieldType.ENUM) and isinstance(value, str):
        return value
    if kind is FieldType.DATETIME and isinstance(value, datetime):
        return xsd.format_datetime(value)
    if kind is FieldType.DATE and isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if kind is FieldType.TIME and isinstance(value, time):
        text = value.isoformat()
        # Same convention as xsd.format_datetime: UTC is written with Z.
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text
    if kind is FieldType.DURATION and isinstance(value, timedelta):
        return xsd.format_duration(value)
    raise TypeError(f"a {type(value).__name__} is not a value of a {kind} field")


def parse_lexical(kind: FieldType, text: str) -> Value:
    """Parse the lexical ``text`` of a value of type ``kind`` (ValueError if it is not one)."""
    if kind in (FieldType.STRING, FieldType.ENUM):
        return text
    if kind in _INT_BITS:
        return xsd.parse_int(text, bits=_INT_BITS[kind])
    parsers: dict[FieldType, Callable[[str], Value]] = {
        FieldType.NUMERIC: xsd.parse_decimal,
        FieldType.BOOLEAN: xsd.parse_boolean,
        FieldType.DATE: xsd.parse_date,
        FieldType.TIME: xsd.parse_time,
        FieldType.DATETIME: xsd.parse_datetime,
        FieldType.DURATION: xsd.parse_duration,
    }
    return parsers[kind](text)


ONLINE_FIELD = FieldSpec(
    name="online",
    type=FieldType.BOOLEAN,
    categories=frozenset({Category.STATUS}),
    description="Whether the device is reachable.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeSpec:
    """The fields a node exposes, as its driver describes them."""

    fields: tuple[FieldSpec, ...]
    _by_name: dict[str, FieldSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, FieldSpec] = {}
        for spec in self.fields:
            if spec.name in by_name:
                raise ValueError(f"duplicate field name: {spec.name!r}")
            by_name[spec.name] = spec
        object.__setattr__(self, "_by_name", by_name)

    def get(self, name: str) -> FieldSpec | None:
        """Return the field called ``name``, or None."""
        return self._by_name.get(name)

    @property
    def by_name(self) -> Mapping[str, FieldSpec]:
        """The fields by name (read only: the spec is immutable)."""
        return self._by_name

    @property
    def writable(self) -> tuple[FieldSpec, ...]:
        """The fields that are control parameters."""
        return tuple(f for f in self.fields if f.writable)


@dataclass(frozen=True, slots=True)
class FieldValue:
    """One value of one field at one time (``timestamp`` is aware UTC)."""

    name: str
    value: Value
    timestamp: datetime
    quality: frozenset[Quality] = frozenset({Quality.AUTOMATIC_READOUT})
