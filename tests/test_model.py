"""The pure model: value coercion, ranges, XML Schema lexical forms."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from hubd.core import xsd
from hubd.core.model import FieldSpec, FieldType, NodeSpec
from hubd.errors import InvalidValue


def spec(kind: FieldType, **kwargs: object) -> FieldSpec:
    return FieldSpec(name="f", type=kind, writable=True, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(True, True), ("on", True), ("OFF", False), ("true", True), ("0", False), (1, True)],
)
def test_boolean_accepts_words_people_type(raw: object, expected: bool) -> None:
    assert spec(FieldType.BOOLEAN).coerce(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", 2, "", None, 0.5])
def test_boolean_refuses_anything_else(raw: object) -> None:
    with pytest.raises(InvalidValue, match="expected on/off"):
        spec(FieldType.BOOLEAN).coerce(raw)


def test_numeric_keeps_the_decimals_as_written() -> None:
    value = spec(FieldType.NUMERIC).coerce("21.50")
    assert value == Decimal("21.50")
    assert xsd.format_decimal(value) == "21.50"  # type: ignore[arg-type]


def test_numeric_from_float_is_quantized_to_declared_decimals() -> None:
    assert str(spec(FieldType.NUMERIC, decimals=1).coerce(21.449999)) == "21.4"


def test_numeric_range_is_enforced_with_a_clear_message() -> None:
    level = spec(FieldType.NUMERIC, minimum=Decimal(0), maximum=Decimal(1))
    assert level.coerce("0.5") == Decimal("0.5")
    with pytest.raises(InvalidValue, match="above the maximum 1"):
        level.coerce("1.5")
    with pytest.raises(InvalidValue, match="below the minimum 0"):
        level.coerce(-1)


@pytest.mark.parametrize("raw", ["NaN", "inf", "abc", True])
def test_numeric_refuses_non_numbers(raw: object) -> None:
    with pytest.raises(InvalidValue):
        spec(FieldType.NUMERIC).coerce(raw)


def test_int_and_long_bounds() -> None:
    assert spec(FieldType.INT).coerce("2147483647") == 2**31 - 1
    with pytest.raises(InvalidValue):
        spec(FieldType.INT).coerce("2147483648")
    assert spec(FieldType.LONG).coerce("2147483648") == 2**31
    with pytest.raises(InvalidValue):
        spec(FieldType.INT).coerce("1.5")


def test_enum_matches_options_case_insensitively() -> None:
    mode = spec(FieldType.ENUM, options=("Auto", "Manual"))
    assert mode.coerce("manual") == "Manual"
    with pytest.raises(InvalidValue, match="one of Auto, Manual"):
        mode.coerce("eco")


def test_temporal_types() -> None:
    assert spec(FieldType.DATE).coerce("2013-05-01") == date(2013, 5, 1)
    assert spec(FieldType.TIME).coerce("08:00:00") == time(8, 0)
    assert spec(FieldType.DATETIME).coerce("2013-04-02T08:00:00Z") == datetime(
        2013, 4, 2, 8, tzinfo=UTC
    )
    assert spec(FieldType.DURATION).coerce("PT3M30S") == timedelta(minutes=3, seconds=30)


def test_field_names_are_lower_snake() -> None:
    with pytest.raises(ValueError, match="lower_snake"):
        FieldSpec(name="Temperature", type=FieldType.NUMERIC)


def test_node_spec_refuses_duplicate_fields() -> None:
    field = FieldSpec(name="state", type=FieldType.BOOLEAN)
    with pytest.raises(ValueError, match="duplicate"):
        NodeSpec(fields=(field, field))


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("PT5M", timedelta(minutes=5)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT0.5S", timedelta(seconds=0.5)),
        ("-PT1S", timedelta(seconds=-1)),
    ],
)
def test_duration_round_trip(text: str, delta: timedelta) -> None:
    assert xsd.parse_duration(text) == delta
    assert xsd.parse_duration(xsd.format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["P", "PT", "P1Y", "5M", "PTS"])
def test_duration_refuses_malformed_or_calendar_values(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        xsd.parse_duration(text)


def test_datetime_is_written_in_utc_with_z() -> None:
    stamp = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert xsd.format_datetime(stamp) == "2024-01-02T03:04:05Z"
