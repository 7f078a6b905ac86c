"""Tests of the BTHome v2 parser on the spec's own examples and real captures.

Test data sources (data only, no code):

* "spec": the example column of the tables on https://bthome.io/format/
  (repository home-assistant/bthome.io, src/format.html, commit 0cf388b0,
  2026-04-30), each object prefixed here with the device-information byte 0x40.
* "encryption page": https://bthome.io/encryption/ (src/encryption.html).
* "bthome-ble": captures in the tests of Bluetooth-Devices/bthome-ble
  (tests/test_parser_v2.py, commit d55bd3ae), named after the device there.
* "issue 118": a payload a user captured with bleak, in
  https://github.com/Bluetooth-Devices/bthome-ble/issues/118.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.ble.bthome import (
    BTHOME_SERVICE_UUID,
    BTHomeAdvert,
    BTHomeDecryptionError,
    BTHomeError,
    BTHomeEvent,
    BTHomeParseError,
    parse_bthome,
)
from drivers.ble.measurement import Measurement

SPEC_KEY = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db932")
SPEC_MAC = bytes.fromhex("5448E68F80A5")


def parse_hex(text: str, **kwargs: bytes) -> BTHomeAdvert:
    return parse_bthome(bytes.fromhex(text.replace(" ", "")), **kwargs)


def assert_same(actual: Measurement, expected: Measurement) -> None:
    """Equal, and of the same Python type (True == 1 and 25 == Decimal(25) would hide bugs)."""
    assert actual == expected
    assert type(actual.value) is type(expected.value)


# (spec example, expected reading): one row per object id of the sensor table.
SENSOR_EXAMPLES = [
    ("518756", Measurement("acceleration", Decimal("22.151"), "m/s²")),
    ("630057D0FF", Measurement("acceleration", Decimal("-3.123456"), "m/s²")),
    ("0161", Measurement("battery", 97, "%")),
    ("6001", Measurement("channel", 1, None)),
    ("12E204", Measurement("co2", 1250, "ppm")),
    ("56E803", Measurement("conductivity", 1000, "µS/cm")),
    ("0960", Measurement("count", 96, None)),
    ("3D0960", Measurement("count", 24585, None)),
    ("3E2A2C0960", Measurement("count", 1611213866, None)),
    ("59EA", Measurement("count", -22, None)),
    ("5AEAEA", Measurement("count", -5398, None)),
    ("5BEA0234EA", Measurement("count", -365690134, None)),
    ("434E34", Measurement("current", Decimal("13.39"), "A")),
    ("5D02EA", Measurement("current", Decimal("-5.63"), "A")),
    ("08CA06", Measurement("dewpoint", Decimal("17.38"), "°C")),
    ("5E9F8C", Measurement("direction", Decimal("359.99"), "°")),
    ("400C00", Measurement("distance", 12, "mm")),
    ("414E00", Measurement("distance", Decimal("7.8"), "m")),
    ("424E3400", Measurement("duration", Decimal("13.390"), "s")),
    ("4d12138a14", Measurement("energy", Decimal("344593.170"), "kWh")),
    ("0A138A14", Measurement("energy", Decimal("1346.067"), "kWh")),
    ("4B138A14", Measurement("gas", Decimal("1346.067"), "m³")),
    ("4C41018A01", Measurement("gas", Decimal("25821.505"), "m³")),
    ("528756", Measurement("gyroscope", Decimal("22.151"), "°/s")),
    ("03BF13", Measurement("humidity", Decimal("50.55"), "%")),
    ("2E23", Measurement("humidity", 35, "%")),
    ("05138A14", Measurement("illuminance", Decimal("13460.67"), "lx")),
    ("6402", Measurement("light_level", 2, None)),
    ("065E1F", Measurement("mass", Decimal("80.3"), "kg")),
    ("073E1D", Measurement("mass", Decimal("74.86"), "lb")),
    ("14020C", Measurement("moisture", Decimal("30.74"), "%")),
    ("2F23", Measurement("moisture", 35, "%")),
    ("0D120C", Measurement("pm25", 3090, "µg/m³")),
    ("0E021C", Measurement("pm10", 7170, "µg/m³")),
    ("0B021B00", Measurement("power", Decimal("69.14"), "W")),
    ("5C02FBFFFF", Measurement("power", Decimal("-12.78"), "W")),
    ("5FA00F", Measurement("precipitation", Decimal("400.0"), "mm")),
    ("04138A01", Measurement("pressure", Decimal("1008.83"), "hPa")),
    ("3F020C", Measurement("rotation", Decimal("307.4"), "°")),
    ("61AC0D", Measurement("rotational_speed", 3500, "rpm")),
    ("6503", Measurement("settings_revision", 3, None)),
    ("444E34", Measurement("speed", Decimal("133.90"), "m/s")),
    ("624099DFFF", Measurement("speed", Decimal("-2.123456"), "m/s")),
    ("57EA", Measurement("temperature", -22, "°C")),
    ("58EA", Measurement("temperature", Decimal("-7.7"), "°C")),
    ("451101", Measurement("temperature", Decimal("27.3"), "°C")),
    ("02CA09", Measurement("temperature", Decimal("25.06"), "°C")),
    ("505d396164", Measurement("timestamp", 1684093277, None)),
    ("133301", Measurement("tvoc", 307, "µg/m³")),
    ("0C020C", Measurement("voltage", Decimal("3.074"), "V")),
    ("4A020C", Measurement("voltage", Decimal("307.4"), "V")),
    ("4E87562A01", Measurement("volume", Decimal("19551.879"), "L")),
    ("478756", Measurement("volume", Decimal("2215.1"), "L")),
    ("48DC87", Measurement("volume", 34780, "mL")),
    ("5587562A01", Measurement("volume_storage", Decimal("19551.879"), "L")),
    ("49DC87", Measurement("volume_flow_rate", Decimal("34.780"), "m³/h")),
    ("4632", Measurement("uv_index", Decimal("5.0"), None)),
    ("4F87562A01", Measurement("water", Decimal("19551.879"), "L")),
]

# (spec example, field name, state): the binary sensor table.
BINARY_EXAMPLES = [
    ("1501", "battery_low", True),
    ("1601", "battery_charging", True),
    ("1700", "carbon_monoxide", False),
    ("1801", "cold", True),
    ("1900", "connectivity", False),
    ("1A00", "door", False),
    ("1B01", "garage_door", True),
    ("1C01", "gas_detected", True),
    ("0F01", "generic_boolean", True),
    ("1D00", "heat", False),
    ("1E01", "light", True),
    ("1F01", "lock", True),
    ("2001", "moisture_detected", True),
    ("2100", "motion", False),
    ("2201", "moving", True),
    ("2301", "occupancy", True),
    ("1100", "opening", False),
    ("2400", "plug", False),
    ("1001", "power_on", True),
    ("2500", "presence", False),
    ("2601", "problem", True),
    ("2701", "running", True),
    ("2800", "safety", False),
    ("2901", "smoke", True),
    ("2A00", "sound", False),
    ("2B00", "tamper", False),
    ("2C01", "vibration", True),
    ("2D01", "window", True),
]

# (spec example, expected event): the events table, commands included.
EVENT_EXAMPLES = [
    ("3A00", BTHomeEvent("button", None)),
    ("3A01", BTHomeEvent("button", "press")),
    ("3A02", BTHomeEvent("button", "double_press")),
    ("3A03", BTHomeEvent("button", "triple_press")),
    ("3A04", BTHomeEvent("button", "long_press")),
    ("3A05", BTHomeEvent("button", "long_double_press")),
    ("3A06", BTHomeEvent("button", "long_triple_press")),
    ("3A80", BTHomeEvent("button", "hold_press")),
    ("3B0000", BTHomeEvent("command", "off")),
    ("3B0001", BTHomeEvent("command", "on")),
    ("3B0002", BTHomeEvent("command", "toggle")),
    ("3B010305", BTHomeEvent("command", "step_up", 5, b"\x05")),
    ("3B010405", BTHomeEvent("command", "step_down", 5, b"\x05")),
    ("3C0000", BTHomeEvent("dimmer", None)),
    ("3C0103", BTHomeEvent("dimmer", "rotate_left", 3)),
    ("3C020A", BTHomeEvent("dimmer", "rotate_right", 10)),
]


@pytest.mark.parametrize(("example", "expected"), SENSOR_EXAMPLES, ids=lambda v: str(v)[:12])
def test_spec_sensor_examples(example: str, expected: Measurement) -> None:
    advert = parse_hex("40" + example)
    assert len(advert.measurements) == 1
    assert_same(advert.measurements[0], expected)
    assert advert.unknown_object_id is None


@pytest.mark.parametrize(("example", "name", "state"), BINARY_EXAMPLES)
def test_spec_binary_sensor_examples(example: str, name: str, state: bool) -> None:
    advert = parse_hex("40" + example)
    assert len(advert.measurements) == 1
    assert_same(advert.measurements[0], Measurement(name, state, None))


@pytest.mark.parametrize(("example", "expected"), EVENT_EXAMPLES, ids=lambda v: str(v)[:12])
def test_spec_event_examples(example: str, expected: BTHomeEvent) -> None:
    advert = parse_hex("40" + example)
    assert advert.events == [expected]
    assert advert.measurements == []


def test_spec_example_names_are_unique_lower_snake() -> None:
    names = [m.name for _, m in SENSOR_EXAMPLES] + [name for _, name, _ in BINARY_EXAMPLES]
    assert all(name.isidentifier() and name == name.lower() for name in names)
    # A binary sensor never shares its name with a numeric one (both become fields).
    assert not {m.name for _, m in SENSOR_EXAMPLES} & {name for _, name, _ in BINARY_EXAMPLES}


def test_spec_advertisement_example() -> None:
    # The walk-through at the top of the format page: D2FC 40 02C409 03BF13;
    # bleak hands over the service data without the UUID.
    advert = parse_hex("40 02C409 03BF13")
    assert advert == BTHomeAdvert(
        measurements=[
            Measurement("temperature", Decimal("25.00"), "°C"),
            Measurement("humidity", Decimal("50.55"), "%"),
        ],
        packet_id=None,
        encrypted=False,
        trigger_based=False,
    )


def test_values_keep_the_factor_decimals() -> None:
    advert = parse_hex("40 02C409 03BF13 424E3400 0C020C")
    assert [str(m.value) for m in advert.measurements] == ["25.00", "50.55", "13.390", "3.074"]


def test_contract_replay_example() -> None:
    # The service data of the example line of the public replay file format.
    advert = parse_hex("40 01 5c 02 0a09 03 bf13")
    assert advert.measurements == [
        Measurement("battery", 92, "%"),
        Measurement("temperature", Decimal("23.14"), "°C"),
        Measurement("humidity", Decimal("50.55"), "%"),
    ]


def test_spec_packet_id() -> None:
    advert = parse_hex("40 0009")
    assert advert.packet_id == 9
    assert advert.measurements == []


def test_spec_device_information_objects() -> None:
    assert parse_hex("40 F00100").device_type_id == 1
    assert parse_hex("40 F100010204").firmware_version == "4.2.1.0"
    assert parse_hex("40 F2000106").firmware_version == "6.1.0"


def test_spec_text_and_raw() -> None:
    assert parse_hex("40 530C48656C6C6F20576F726C6421").texts == {"text": "Hello World!"}
    assert parse_hex("40 540C48656C6C6F20576F726C6421").raws == {"raw": b"Hello World!"}


def test_invalid_utf8_text_does_not_cost_the_other_readings() -> None:
    advert = parse_hex("40 02CA09 5302FFFE 03BF13")
    assert advert.texts == {"text": "\ufffd\ufffd"}
    assert [m.name for m in advert.measurements] == ["temperature", "humidity"]


def test_issue_118_real_capture() -> None:
    advert = parse_hex("40003f015e02820803ac170c830b")
    assert advert.packet_id == 63
    assert advert.measurements == [
        Measurement("battery", 94, "%"),
        Measurement("temperature", Decimal("21.78"), "°C"),
        Measurement("humidity", Decimal("60.60"), "%"),
        Measurement("voltage", Decimal("2.947"), "V"),
    ]


def test_shelly_blu_button_captures() -> None:
    # bthome-ble: test_bthome_shelly_button, test_bthome_shelly_button_no_press.
    advert = parse_hex("40005201643a01")
    assert advert.packet_id == 0x52
    assert advert.measurements == [Measurement("battery", 100, "%")]
    assert advert.events == [BTHomeEvent("button", "press")]
    assert not advert.trigger_based

    advert = parse_hex("440021015e3a01")
    assert advert.trigger_based
    assert advert.measurements == [Measurement("battery", 94, "%")]
    assert advert.events == [BTHomeEvent("button", "press")]


def test_shelly_blu_ht_display_capture() -> None:
    # bthome-ble: test_shelly_blu_ht_display_zb.
    advert = parse_hex("40002e01641e012e34451601")
    assert advert.packet_id == 46
    assert advert.measurements == [
        Measurement("battery", 100, "%"),
        Measurement("light", True, None),
        Measurement("humidity", 52, "%"),
        Measurement("temperature", Decimal("27.8"), "°C"),
    ]


def test_same_name_gets_numbered_in_order() -> None:
    advert = parse_hex("40 02CA09 02CF09 02CF08 03B718 03B717 015D 451101")
    assert [m.name for m in advert.measurements] == [
        "temperature",
        "temperature_2",
        "temperature_3",
        "humidity",
        "humidity_2",
        "battery",
        "temperature_4",
    ]
    assert advert.measurements[2].value == Decimal("22.55")


def test_spec_multiple_button_events() -> None:
    # The spec's "3A003A01": no event on the first button, a press on the second.
    advert = parse_hex("40 3A00 3A01 3A03")
    assert advert.events == [
        BTHomeEvent("button", None),
        BTHomeEvent("button_2", "press"),
        BTHomeEvent("button_3", "triple_press"),
    ]


def test_unknown_event_and_command_ids_are_kept_and_parsing_goes_on() -> None:
    advert = parse_hex("40 3A07 3B02 09 AABB 3C0705 2D01")
    assert advert.events == [
        BTHomeEvent("button", "unknown_0x07"),
        BTHomeEvent("command", "unknown_0x09", None, b"\xaa\xbb"),
        BTHomeEvent("dimmer", "unknown_0x07", 5),
    ]
    assert advert.measurements == [Measurement("window", True, None)]


def test_command_length_ignores_the_reserved_bits() -> None:
    advert = parse_hex("40 3B E1 03 05 0161")
    assert advert.events == [BTHomeEvent("command", "step_up", 5, b"\x05")]
    assert advert.measurements == [Measurement("battery", 97, "%")]


def test_unknown_object_id_stops_parsing() -> None:
    # 0xFE is not in the spec: its size is unknown, so nothing after it can be read.
    advert = parse_hex("40 02CA09 FE 0161 03BF13")
    assert advert.measurements == [Measurement("temperature", Decimal("25.06"), "°C")]
    assert advert.unknown_object_id == 0xFE


def test_objects_out_of_order_are_still_read() -> None:
    advert = parse_hex("40 03BF13 02CA09")
    assert [m.name for m in advert.measurements] == ["humidity", "temperature"]


def test_device_information_flags() -> None:
    advert = parse_hex("44")
    assert advert.trigger_based
    assert not advert.encrypted
    assert advert.measurements == []
    assert advert.events == []


@pytest.mark.parametrize(
    "payload",
    [
        "40 02CA09 03BF",  # the humidity value lacks a byte
        "40 02",  # an id and no value
        "40 0C02",
        "40 3E2A2C09",
        "40 530C4865",  # a text shorter than its length byte
        "40 53",  # a text without its length byte
        "40 540248",
        "40 3B0103",  # a step_up command without its argument
        "40 3B",
        "40 3C01",  # a dimmer event without its steps
        "40 F100",
    ],
)
def test_truncated_payloads(payload: str) -> None:
    with pytest.raises(BTHomeParseError, match="truncated"):
        parse_hex(payload)


@pytest.mark.parametrize("payload", ["00", "20 02CA09", "60 02CA09", "E0"])
def test_wrong_versions(payload: str) -> None:
    with pytest.raises(BTHomeParseError, match="version"):
        parse_hex(payload)


def test_empty_payload() -> None:
    with pytest.raises(BTHomeParseError, match="empty"):
        parse_bthome(b"")


def test_errors_are_value_errors() -> None:
    assert issubclass(BTHomeParseError, ValueError)
    assert issubclass(BTHomeDecryptionError, ValueError)
    assert issubclass(BTHomeParseError, BTHomeError)
    assert BTHOME_SERVICE_UUID.startswith("0000fcd2-")


# --- encryption -------------------------------------------------------------


def test_encryption_page_example() -> None:
    # https://bthome.io/encryption/: service data d2fc 41 e445f3c9962b 33221100
    # 6c7c4519 decrypts with the page's key and MAC to 02ca09 03bf13.
    advert = parse_hex("41e445f3c9962b332211006c7c4519", mac=SPEC_MAC, bindkey=SPEC_KEY)
    assert advert.encrypted
    assert advert.counter == 1122867
    assert advert.measurements == [
        Measurement("temperature", Decimal("25.06"), "°C"),
        Measurement("humidity", Decimal("50.55"), "%"),
    ]


def test_encryption_earlier_spec_example() -> None:
    # bthome-ble test_bindkey_correct: the same key, MAC and readings with the
    # counter bytes 00112233 that an earlier version of the encryption page used.
    advert = parse_hex("41a47266c95f7300112233 78237214", mac=SPEC_MAC, bindkey=SPEC_KEY)
    assert advert.counter == 0x33221100
    assert [m.value for m in advert.measurements] == [Decimal("25.06"), Decimal("50.55")]


def test_encrypted_shelly_blu_motion() -> None:
    # bthome-ble test_bthome_motion (SBMO-003Z).
    advert = parse_hex("4187b90011223372b0231f", mac=SPEC_MAC, bindkey=SPEC_KEY)
    assert advert.measurements == [Measurement("motion", True, None)]


def test_encrypted_shelly_blu_button_capture() -> None:
    # bthome-ble test_encrypted_shelly_blu_button_event (SBBT-002C).
    advert = parse_hex(
        "450aeb84467f85ba0100003188788c",
        mac=bytes.fromhex("B43522F53DA4"),
        bindkey=bytes.fromhex("90bffd73cb6b26ef58a7a8eba9232036"),
    )
    assert advert.encrypted
    assert advert.trigger_based
    assert advert.counter == 0x1BA
    assert advert.packet_id == 7
    assert advert.measurements == [Measurement("battery", 100, "%")]
    assert advert.events == [BTHomeEvent("button", "press")]


ENCRYPTED_SPEC = "41e445f3c9962b332211006c7c4519"


def test_wrong_bindkey() -> None:
    wrong = bytes.fromhex("231d39c1d7cc1ab1aee224cd096db933")
    with pytest.raises(BTHomeDecryptionError, match="MIC"):
        parse_hex(ENCRYPTED_SPEC, mac=SPEC_MAC, bindkey=wrong)


def test_wrong_mac() -> None:
    with pytest.raises(BTHomeDecryptionError):
        parse_hex(ENCRYPTED_SPEC, mac=bytes.fromhex("5448E68F80A6"), bindkey=SPEC_KEY)


@pytest.mark.parametrize("index", range(1, 15))
def test_any_flipped_bit_fails_the_mic(index: int) -> None:
    data = bytearray.fromhex(ENCRYPTED_SPEC)
    data[index] ^= 0x01
    with pytest.raises(BTHomeDecryptionError):
        parse_bthome(bytes(data), mac=SPEC_MAC, bindkey=SPEC_KEY)


def test_encrypted_without_key_or_mac() -> None:
    with pytest.raises(BTHomeDecryptionError, match="bindkey"):
        parse_hex(ENCRYPTED_SPEC, mac=SPEC_MAC)
    with pytest.raises(BTHomeDecryptionError, match="MAC"):
        parse_hex(ENCRYPTED_SPEC, bindkey=SPEC_KEY)


def test_encrypted_too_short_for_counter_and_mic() -> None:
    with pytest.raises(BTHomeParseError, match="too short"):
        parse_hex("41 0011223344 5566", mac=SPEC_MAC, bindkey=SPEC_KEY)


def test_bad_key_and_mac_lengths_are_configuration_errors() -> None:
    with pytest.raises(ValueError, match="16 bytes") as excinfo:
        parse_hex("40", bindkey=b"short")
    assert not isinstance(excinfo.value, BTHomeError)
    with pytest.raises(ValueError, match="6 bytes"):
        parse_hex("40", mac=b"\x01\x02")


def test_unencrypted_payload_ignores_a_configured_key() -> None:
    advert = parse_hex("40 02CA09", mac=SPEC_MAC, bindkey=SPEC_KEY)
    assert not advert.encrypted
    assert advert.counter is None
    assert advert.measurements == [Measurement("temperature", Decimal("25.06"), "°C")]


def encrypt(info: int, plaintext: bytes, counter: bytes, key: bytes, mac: bytes) -> bytes:
    """Build an encrypted payload the way the encryption page describes, to test round trips."""
    nonce = mac + b"\xd2\xfc" + bytes([info]) + counter
    sealed = AESCCM(key, tag_length=4).encrypt(nonce, plaintext, None)
    return bytes([info]) + sealed[:-4] + counter + sealed[-4:]


def test_encrypt_helper_matches_the_spec_vector() -> None:
    built = encrypt(
        0x41, bytes.fromhex("02ca0903bf13"), bytes.fromhex("33221100"), SPEC_KEY, SPEC_MAC
    )
    assert built == bytes.fromhex(ENCRYPTED_SPEC)


# --- properties ---------------------------------------------------------------

FUZZ = settings(max_examples=400, database=None, deadline=None)


@FUZZ
@given(st.binary(max_size=40))
def test_arbitrary_bytes_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(BTHomeError):
        parse_bthome(data)


@FUZZ
@given(st.sampled_from([0x40, 0x44]), st.binary(max_size=40))
def test_arbitrary_objects_raise_only_parse_errors(info: int, objects: bytes) -> None:
    # A valid v2 header, so that the fuzzing reaches the object walk.
    try:
        advert = parse_bthome(bytes([info]) + objects)
    except BTHomeParseError:
        return
    names = [m.name for m in advert.measurements]
    assert len(names) == len(set(names))


@FUZZ
@given(st.binary(max_size=40))
def test_arbitrary_bytes_with_a_key_raise_only_documented_errors(data: bytes) -> None:
    with contextlib.suppress(BTHomeError):
        parse_bthome(data, mac=SPEC_MAC, bindkey=SPEC_KEY)


@FUZZ
@given(st.binary(max_size=24), st.binary(min_size=4, max_size=4), st.booleans())
def test_encrypted_payload_parses_like_its_plaintext(
    plaintext: bytes, counter: bytes, trigger: bool
) -> None:
    # Encrypting must change nothing but the flags: the same objects come out
    # as from the plaintext sent unencrypted, and the same payloads fail.
    info = 0x45 if trigger else 0x41
    data = encrypt(info, plaintext, counter, SPEC_KEY, SPEC_MAC)
    try:
        plain = parse_bthome(bytes([info & ~0x01]) + plaintext)
    except BTHomeParseError:
        with pytest.raises(BTHomeParseError):
            parse_bthome(data, mac=SPEC_MAC, bindkey=SPEC_KEY)
        return
    advert = parse_bthome(data, mac=SPEC_MAC, bindkey=SPEC_KEY)
    assert advert.encrypted
    assert advert.trigger_based is trigger
    assert advert.counter == int.from_bytes(counter, "little")
    assert replace(advert, encrypted=False, counter=None) == plain


@FUZZ
@given(st.integers(min_value=-0x8000, max_value=0x7FFF))
def test_temperature_is_exact(raw: int) -> None:
    (measurement,) = parse_bthome(b"\x40\x02" + raw.to_bytes(2, "little", signed=True)).measurements
    assert isinstance(measurement.value, Decimal)
    assert measurement.value == Decimal(raw) / 100
    assert measurement.value.as_tuple().exponent == -2
