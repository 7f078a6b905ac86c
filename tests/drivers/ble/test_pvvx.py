"""Tests of the pvvx / ATC1441 thermometer parser on real captures.

Test data source (data only, no code): the HCI dumps of LYWSD03MMC sensors in
custom-components/ble_monitor, custom_components/ble_monitor/test/
test_atc_parser.py (commit 5822d949).  Each dump carries the 0x181A service
data after the bytes ``16 1a 18``; that part is copied here, with the values the
test there expects.  The layouts are those of the pvvx README
(https://github.com/pvvx/ATC_MiThermometer#custom-format-all-data-little-endian).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble.measurement import Measurement
from drivers.ble.pvvx import (
    ATC1441_LENGTH,
    PVVX_LENGTH,
    PVVX_SERVICE_UUID,
    PvvxParseError,
    parse_pvvx,
    pvvx_mac,
)

# test_atc_custom: firmware "ATC (Custom)", MAC A4:C1:38:02:83:F4, RSSI -34.
PVVX_CUSTOM = "f4830238c1a4 a906 6911 b60b 58 f7 0d"
# test_atc_custom_v2_9: custom format of firmware 2.9+, MAC A4:C1:38:8D:18:B2.
PVVX_CUSTOM_V29 = "b2188d38c1a4 2b08 9011 f70a 43 20 0f"
# test_atc_custom_ext: custom format in an extended advertisement, A4:C1:38:63:37:8B.
PVVX_CUSTOM_EXT = "8b376338c1a4 ce09 1310 7f0b 52 12 04"
# test_atc_atc1441: firmware "ATC (Atc1441)", MAC A4:C1:38:02:83:F4, RSSI -33.
ATC1441 = "a4c1380283f4 00a2 2f 5f 0bf8 19"
# test_atc_atc1441_ext: ATC1441 format in an extended advertisement, A4:C1:38:BC:7C:4E.
ATC1441_EXT = "a4c138bc7c4e 0102 28 4f 0b67 20"


def parse_hex(text: str) -> list[Measurement]:
    return parse_pvvx(bytes.fromhex(text.replace(" ", "")))


def by_name(measurements: list[Measurement]) -> dict[str, Measurement]:
    return {m.name: m for m in measurements}


def test_pvvx_custom_capture() -> None:
    assert parse_hex(PVVX_CUSTOM) == [
        Measurement("temperature", Decimal("17.05"), "°C"),
        Measurement("humidity", Decimal("44.57"), "%"),
        Measurement("battery", 88, "%"),
        Measurement("voltage", Decimal("2.998"), "V"),
        Measurement("packet_id", 247, None),
        # flags 0x0d = bits 0, 2, 3
        Measurement("reed_switch", True, None),
        Measurement("trigger_output", False, None),
        Measurement("temperature_trigger", True, None),
        Measurement("humidity_trigger", False, None),
    ]


@pytest.mark.parametrize(
    ("payload", "temperature", "humidity", "voltage", "battery", "packet_id"),
    [
        (PVVX_CUSTOM_V29, "20.91", "44.96", "2.807", 67, 32),
        (PVVX_CUSTOM_EXT, "25.10", "41.15", "2.943", 82, 18),
    ],
)
def test_pvvx_custom_captures(
    payload: str, temperature: str, humidity: str, voltage: str, battery: int, packet_id: int
) -> None:
    values = by_name(parse_hex(payload))
    assert values["temperature"] == Measurement("temperature", Decimal(temperature), "°C")
    assert values["humidity"] == Measurement("humidity", Decimal(humidity), "%")
    assert values["voltage"] == Measurement("voltage", Decimal(voltage), "V")
    assert values["battery"] == Measurement("battery", battery, "%")
    assert values["packet_id"].value == packet_id


def test_pvvx_values_keep_the_factor_decimals() -> None:
    values = by_name(parse_hex(PVVX_CUSTOM_EXT))
    assert str(values["temperature"].value) == "25.10"
    assert str(values["voltage"].value) == "2.943"


def test_pvvx_flags() -> None:
    values = by_name(parse_hex(PVVX_CUSTOM_V29))  # flags 0x0f
    assert values["reed_switch"].value is True
    assert values["trigger_output"].value is True
    assert values["temperature_trigger"].value is True
    assert values["humidity_trigger"].value is False
    values = by_name(parse_hex(PVVX_CUSTOM_EXT))  # flags 0x04: configuration only
    assert not any(values[name].value for name in ("reed_switch", "trigger_output"))
    values = by_name(parse_hex(PVVX_CUSTOM_EXT[:-2] + "10"))
    assert values["humidity_trigger"].value is True


def test_pvvx_negative_temperature() -> None:
    # -5.25 °C = -525 = 0xfdf3 little-endian.
    values = by_name(parse_hex("b2188d38c1a4 f3fd 9011 f70a 43 20 00"))
    assert values["temperature"].value == Decimal("-5.25")


def test_atc1441_capture() -> None:
    assert parse_hex(ATC1441) == [
        Measurement("temperature", Decimal("16.2"), "°C"),
        Measurement("humidity", 47, "%"),
        Measurement("battery", 95, "%"),
        Measurement("voltage", Decimal("3.064"), "V"),
        Measurement("packet_id", 25, None),
    ]


def test_atc1441_extended_capture() -> None:
    values = by_name(parse_hex(ATC1441_EXT))
    assert values["temperature"].value == Decimal("25.8")
    assert values["humidity"].value == 40
    assert values["battery"].value == 79
    assert values["voltage"].value == Decimal("2.919")
    assert values["packet_id"].value == 32


def test_atc1441_negative_temperature() -> None:
    values = by_name(parse_hex("a4c1380283f4 ff9c 2f 5f 0bf8 19"))  # -100 = -10.0 °C
    assert values["temperature"].value == Decimal("-10.0")


def test_mac_addresses() -> None:
    # The custom format sends the MAC reversed, ATC1441 in the written order.
    assert pvvx_mac(bytes.fromhex(PVVX_CUSTOM.replace(" ", ""))) == "A4:C1:38:02:83:F4"
    assert pvvx_mac(bytes.fromhex(PVVX_CUSTOM_EXT.replace(" ", ""))) == "A4:C1:38:63:37:8B"
    assert pvvx_mac(bytes.fromhex(ATC1441.replace(" ", ""))) == "A4:C1:38:02:83:F4"
    with pytest.raises(PvvxParseError):
        pvvx_mac(b"\x00" * 14)


@pytest.mark.parametrize(
    "length",
    # Truncated and overlong versions of both formats, the encrypted pvvx
    # lengths (8, 11), and empty.
    [0, 1, 8, 11, 12, 14, 16, 19],
)
def test_wrong_lengths(length: int) -> None:
    payload = bytes.fromhex((PVVX_CUSTOM + " 00 00 00 00").replace(" ", ""))[:length]
    with pytest.raises(PvvxParseError, match=f"{length} bytes"):
        parse_pvvx(payload)


def test_error_is_a_value_error_and_constants() -> None:
    assert issubclass(PvvxParseError, ValueError)
    assert (PVVX_LENGTH, ATC1441_LENGTH) == (15, 13)
    assert PVVX_SERVICE_UUID.startswith("0000181a-")


FUZZ = settings(max_examples=300, database=None, deadline=None)


@FUZZ
@given(st.binary(max_size=32))
def test_arbitrary_bytes_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(PvvxParseError):
        parse_pvvx(data)


@FUZZ
@given(st.one_of(st.binary(min_size=13, max_size=13), st.binary(min_size=15, max_size=15)))
def test_every_well_sized_payload_parses(data: bytes) -> None:
    measurements = parse_pvvx(data)
    names = [m.name for m in measurements]
    assert names[:5] == ["temperature", "humidity", "battery", "voltage", "packet_id"]
    assert len(names) == len(set(names))
    pvvx_mac(data)


@FUZZ
@given(st.integers(min_value=-0x8000, max_value=0x7FFF))
def test_pvvx_temperature_is_exact(raw: int) -> None:
    data = bytes(6) + raw.to_bytes(2, "little", signed=True) + bytes(7)
    temperature = parse_pvvx(data)[0]
    assert isinstance(temperature.value, Decimal)
    assert temperature.value == Decimal(raw) / 100
    assert temperature.value.as_tuple().exponent == -2
