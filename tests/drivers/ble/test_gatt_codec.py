"""The value codecs of ble.gatt, and its configuration."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest
from pydantic import ValidationError

from drivers.ble.gatt import GattConfig
from drivers.ble.gatt_codec import Codec, full_uuid
from hubd.core.model import FieldType
from hubd.errors import InvalidValue


@pytest.mark.parametrize(
    ("codec", "data", "value"),
    [
        (Codec("int16", scale=Decimal("0.01")), "2a09", Decimal("23.46")),
        (Codec("int16", scale=Decimal("0.01")), "f6ff", Decimal("-0.10")),
        (Codec("uint8"), "ff", Decimal(255)),
        (Codec("int8"), "ff", Decimal(-1)),
        (Codec("uint16", "big"), "0102", Decimal(258)),
        (Codec("uint24"), "010000", Decimal(1)),
        (Codec("int24"), "ffffff", Decimal(-1)),
        (Codec("uint32", scale=Decimal("0.001")), "e8030000", Decimal("1.000")),
        (Codec("int32"), "ffffffff", Decimal(-1)),
        (Codec("float32"), struct.pack("<f", 21.5).hex(), Decimal("21.5")),
        (Codec("float32"), struct.pack("<f", 0.1).hex(), Decimal("0.1")),
        (Codec("float64", "big"), struct.pack(">d", -3.25).hex(), Decimal("-3.25")),
        (Codec("bool"), "01", True),
        (Codec("bool"), "00", False),
        (Codec("utf8"), "48616c6c0000", "Hall"),
        (Codec("bytes"), "0a1bff", "0a1bff"),
    ],
)
def test_decode_and_encode_round_trip(codec: Codec, data: str, value: object) -> None:
    decoded = codec.decode(bytes.fromhex(data))
    assert decoded == value
    assert type(decoded) is type(value)
    if codec.format != "utf8" and codec.format != "float32":
        assert codec.encode(decoded).hex() == data


@pytest.mark.parametrize(
    ("codec", "data", "message"),
    [
        (Codec("int16"), "01", "int16 needs 2 byte"),
        (Codec("float32"), "000000", "float32 needs 4"),
        (Codec("float32"), "0000c07f", "not a number"),
        (Codec("bool"), "", "empty"),
        (Codec("utf8"), "ff", "not UTF-8"),
    ],
)
def test_decode_refuses_what_does_not_fit(codec: Codec, data: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.decode(bytes.fromhex(data))


def test_encode_refuses_out_of_range_and_off_scale_values() -> None:
    codec = Codec("uint8", scale=Decimal("0.5"))
    assert codec.encode(Decimal("127.5")) == bytes([255])
    with pytest.raises(InvalidValue, match="does not fit in uint8"):
        codec.encode(Decimal(128))
    with pytest.raises(InvalidValue, match="not a multiple of the scale"):
        codec.encode(Decimal("1.2"))
    with pytest.raises(InvalidValue, match="not hex"):
        Codec("bytes").encode("zz")
    assert Codec("utf8").encode("hé") == "hé".encode()
    assert Codec("bool").encode(True) == b"\x01"


def test_field_spec_carries_type_unit_and_range() -> None:
    spec = Codec("int16", scale=Decimal("0.01")).field_spec("t", unit="°C", writable=True)
    assert spec.type is FieldType.NUMERIC
    assert spec.unit == "°C"
    assert spec.minimum == Decimal("-327.68")
    assert spec.maximum == Decimal("327.67")
    negative = Codec("uint8", scale=Decimal(-1)).field_spec("n", unit=None, writable=False)
    assert (negative.minimum, negative.maximum) == (Decimal(-255), Decimal(0))
    text = Codec("utf8").field_spec("name", unit="x", writable=False)
    assert (text.type, text.unit) == (FieldType.STRING, None)


def test_uuids() -> None:
    assert full_uuid("2A6E") == "00002a6e-0000-1000-8000-00805f9b34fb"
    assert full_uuid("0x2a6e") == "00002a6e-0000-1000-8000-00805f9b34fb"
    assert full_uuid("12345678") == "12345678-0000-1000-8000-00805f9b34fb"
    full = "12345678-1234-5678-1234-56789ABCDEF0"
    assert full_uuid(full) == full.lower()
    with pytest.raises(ValueError, match="not a UUID"):
        full_uuid("2a6")


def test_gatt_config_validation() -> None:
    base = {"id": "t", "driver": "ble.gatt", "address": "C0:FF:EE:00:00:01"}
    with pytest.raises(ValidationError, match="field names used twice: t"):
        GattConfig.model_validate({**base, "characteristics": [{"field": "t", "uuid": "2a6e"}] * 2})
    with pytest.raises(ValidationError, match="read, notify and write are all false"):
        GattConfig.model_validate(
            {**base, "characteristics": [{"field": "t", "uuid": "2a6e", "read": False}]}
        )
    with pytest.raises(ValidationError, match="lower_snake"):
        GattConfig.model_validate({**base, "characteristics": [{"field": "T", "uuid": "2a6e"}]})
    with pytest.raises(ValidationError, match="non-zero"):
        GattConfig.model_validate(
            {**base, "characteristics": [{"field": "t", "uuid": "2a6e", "scale": 0}]}
        )
    with pytest.raises(ValidationError, match="at least 1"):
        GattConfig.model_validate({**base, "characteristics": []})
