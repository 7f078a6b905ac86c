"""Tests of the RuuviTag data format 5 parser on Ruuvi's official test vectors.

Test data source (data only): the "Test vectors" of
https://docs.ruuvi.com/communication/bluetooth-advertisements/data-format-5-rawv2
(repository ruuvi/docs, communication/bluetooth-advertisements/
data-format-5-rawv2.md, commit 271a6f7e): valid data, maximum values, minimum
values and invalid values, with the values the page gives for each.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble.measurement import Measurement
from drivers.ble.ruuvi import (
    RUUVI_COMPANY_ID,
    RUUVI_FORMAT_5_LENGTH,
    RuuviParseError,
    parse_ruuvi,
    ruuvi_mac,
)

VALID = "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"
MAXIMUM = "057FFFFFFEFFFE7FFF7FFF7FFFFFDEFEFFFECBB8334C884F"
MINIMUM = "058001000000008001800180010000000000CBB8334C884F"
INVALID = "058000FFFFFFFF800080008000FFFFFFFFFFFFFFFFFFFFFF"


def parse_hex(text: str) -> list[Measurement]:
    return parse_ruuvi(bytes.fromhex(text))


def test_valid_data_vector() -> None:
    # Temperature 24.3 C, pressure 100044 Pa, humidity 53.49 %, acceleration
    # 0.004 / -0.004 / 1.036 G, TX power 4 dBm, voltage 2.977 V, movement
    # counter 66, measurement sequence 205.
    assert parse_hex(VALID) == [
        Measurement("temperature", Decimal("24.3"), "°C"),
        Measurement("humidity", Decimal("53.49"), "%"),
        Measurement("pressure", Decimal("1000.44"), "hPa"),
        Measurement("acceleration_x", 4, "mG"),
        Measurement("acceleration_y", -4, "mG"),
        Measurement("acceleration_z", 1036, "mG"),
        Measurement("voltage", Decimal("2.977"), "V"),
        Measurement("tx_power", 4, "dBm"),
        Measurement("movement_counter", 66, None),
        Measurement("measurement_sequence", 205, None),
    ]


def test_maximum_values_vector() -> None:
    assert parse_hex(MAXIMUM) == [
        Measurement("temperature", Decimal("163.835"), "°C"),
        Measurement("humidity", Decimal("163.835"), "%"),
        Measurement("pressure", Decimal("1155.34"), "hPa"),
        Measurement("acceleration_x", 32767, "mG"),
        Measurement("acceleration_y", 32767, "mG"),
        Measurement("acceleration_z", 32767, "mG"),
        Measurement("voltage", Decimal("3.646"), "V"),
        Measurement("tx_power", 20, "dBm"),
        Measurement("movement_counter", 254, None),
        Measurement("measurement_sequence", 65534, None),
    ]


def test_minimum_values_vector() -> None:
    assert parse_hex(MINIMUM) == [
        Measurement("temperature", Decimal("-163.835"), "°C"),
        Measurement("humidity", Decimal("0"), "%"),
        Measurement("pressure", Decimal("500.00"), "hPa"),
        Measurement("acceleration_x", -32767, "mG"),
        Measurement("acceleration_y", -32767, "mG"),
        Measurement("acceleration_z", -32767, "mG"),
        Measurement("voltage", Decimal("1.600"), "V"),
        Measurement("tx_power", -40, "dBm"),
        Measurement("movement_counter", 0, None),
        Measurement("measurement_sequence", 0, None),
    ]


def test_invalid_values_vector_gives_no_measurement() -> None:
    assert parse_hex(INVALID) == []
    assert ruuvi_mac(bytes.fromhex(INVALID)) is None


def test_values_are_exact_decimals() -> None:
    values = {m.name: m.value for m in parse_hex(VALID)}
    # 4860 * 0.005 and 21396 * 0.0025, keeping the steps' decimals.
    assert str(values["temperature"]) == "24.300"
    assert str(values["humidity"]) == "53.4900"
    assert str(values["pressure"]) == "1000.44"
    assert str(values["voltage"]) == "2.977"


def test_spec_field_examples() -> None:
    # The per-field example tables of the same page, placed into the valid vector.
    def with_field(offset: int, raw: bytes) -> dict[str, Measurement]:
        data = bytearray.fromhex(VALID)
        data[offset : offset + len(raw)] = raw
        return {m.name: m for m in parse_ruuvi(bytes(data))}

    assert with_field(1, bytes.fromhex("01C3"))["temperature"].value == Decimal("2.255")
    assert with_field(1, bytes.fromhex("FE3D"))["temperature"].value == Decimal("-2.255")
    assert with_field(3, (10010).to_bytes(2, "big"))["humidity"].value == Decimal("25.025")
    assert with_field(3, (40000).to_bytes(2, "big"))["humidity"].value == Decimal("100")
    assert with_field(5, (51325).to_bytes(2, "big"))["pressure"].value == Decimal("1013.25")
    assert with_field(7, bytes.fromhex("FC18"))["acceleration_x"].value == -1000
    assert with_field(7, bytes.fromhex("03E8"))["acceleration_x"].value == 1000
    power = with_field(13, (1400 << 5 | 22).to_bytes(2, "big"))
    assert power["voltage"].value == Decimal("3.000")
    assert power["tx_power"].value == 4
    assert with_field(15, bytes([100]))["movement_counter"].value == 100
    assert with_field(16, (1000).to_bytes(2, "big"))["measurement_sequence"].value == 1000


def test_each_not_available_sentinel_hides_only_its_quantity() -> None:
    data = bytearray.fromhex(VALID)
    data[13:15] = (1377 << 5 | 0x1F).to_bytes(2, "big")  # tx power n/a, battery valid
    names = [m.name for m in parse_ruuvi(bytes(data))]
    assert "tx_power" not in names
    assert "voltage" in names
    data[13:15] = (0x7FF << 5 | 22).to_bytes(2, "big")  # battery n/a, tx power valid
    names = [m.name for m in parse_ruuvi(bytes(data))]
    assert "voltage" not in names
    assert "tx_power" in names


def test_mac() -> None:
    assert ruuvi_mac(bytes.fromhex(VALID)) == "CB:B8:33:4C:88:4F"


@pytest.mark.parametrize("length", [0, 1, 14, 23, 25, 31])
def test_wrong_lengths(length: int) -> None:
    data = (bytes.fromhex(VALID) + bytes(8))[:length]
    with pytest.raises(RuuviParseError):
        parse_ruuvi(data)
    with pytest.raises(RuuviParseError):
        ruuvi_mac(data)


@pytest.mark.parametrize(
    "payload",
    [
        "03291A1ECE1EFC18F94202CA0B53",  # format 3 (RAWv1), Ruuvi's valid-data vector
        "06" + VALID[2:],  # another format byte at the right length
    ],
)
def test_other_data_formats(payload: str) -> None:
    with pytest.raises(RuuviParseError, match="format"):
        parse_hex(payload)


def test_error_is_a_value_error_and_constants() -> None:
    assert issubclass(RuuviParseError, ValueError)
    assert RUUVI_COMPANY_ID == 0x0499
    assert RUUVI_FORMAT_5_LENGTH == 24


FUZZ = settings(max_examples=300, database=None, deadline=None)


@FUZZ
@given(st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(RuuviParseError):
        parse_ruuvi(data)
    with contextlib.suppress(RuuviParseError):
        ruuvi_mac(data)


@FUZZ
@given(st.binary(min_size=23, max_size=23))
def test_every_format_5_payload_parses(rest: bytes) -> None:
    data = b"\x05" + rest
    measurements = parse_ruuvi(data)
    names = [m.name for m in measurements]
    assert len(names) == len(set(names))
    for m in measurements:
        if m.name == "temperature":
            raw = int.from_bytes(data[1:3], "big", signed=True)
            assert m.value == Decimal(raw) * Decimal("0.005")
        if m.name == "tx_power":
            assert isinstance(m.value, int)
            assert -40 <= m.value <= 20
