"""DSMR/P1 telegram parsing on captured telegrams, broken telegrams and noise (pure, no I/O).

Fixture telegrams (``fixtures/*.txt``) are byte-exact copies, CRLF line ends included, of
telegram *data* published elsewhere; nothing else was copied:

* ``dsmr50_spec_example.txt``: the example telegram of the DSMR 5.0.2 P1 Companion Standard
  (Netbeheer Nederland), as transcribed in nielsbasjes/dsmr-tools,
  ``parser/src/test/java/nl/basjes/dsmr/parse/TestDsmrParser.java`` (``testParse``). The
  standard prints the CRC ``EF2F``, which does not match its printed text (the text gives
  ``E47C``), so this telegram is checked with ``verify_crc=False``.
* ``dsmr50_iskra_am550.txt``: a real Iskra AM550 telegram, same file (``testParseRealTelegram``).
* ndokter/dsmr_parser, ``test/example_telegrams.py``: ``dsmr50_ndokter_v5.txt``
  (``TELEGRAM_V5``), ``dsmr50_two_mbus.txt`` (``TELEGRAM_V5_TWO_MBUS``), ``dsmr42_kaifa.txt``
  (``TELEGRAM_V4_2``), ``dsmr30_iskra.txt`` (``TELEGRAM_V3``), ``dsmr22_iskra.txt``
  (``TELEGRAM_V2_2``), ``emucs_fluvius_v171.txt`` (``TELEGRAM_FLUVIUS_V171``, Belgian e-MUCS),
  ``sagemcom_t210_d_r.txt`` (``TELEGRAM_SAGEMCOM_T210_D_R``, units in Wh/W/varh) and
  ``warmtelink_unpadded_crc.txt`` (``TELEGRAM_UNPADDED_CRC``: a heat meter gateway that sends
  the CRC ``B9F`` without its leading zero).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.serial.dsmr_framing import DsmrDecoder, TelegramBuffer
from drivers.serial.dsmr_protocol import (
    MAX_TELEGRAM_BYTES,
    DsmrParseError,
    Reading,
    Telegram,
    crc16,
    parse_telegram,
)

FIXTURES = Path(__file__).parent / "fixtures"
WITH_CRC = [
    "dsmr50_iskra_am550.txt",
    "dsmr50_ndokter_v5.txt",
    "dsmr50_two_mbus.txt",
    "dsmr42_kaifa.txt",
    "emucs_fluvius_v171.txt",
    "sagemcom_t210_d_r.txt",
    "warmtelink_unpadded_crc.txt",
]
WITHOUT_CRC = ["dsmr22_iskra.txt", "dsmr30_iskra.txt"]
ALL = [*WITH_CRC, *WITHOUT_CRC, "dsmr50_spec_example.txt"]

PROPERTY = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def load(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def values(telegram: Telegram) -> dict[str, tuple[object, str | None]]:
    return {r.name: (r.value, r.unit) for r in telegram.readings}


def with_crc(body: str) -> bytes:
    """Build a telegram from its text up to and including '!', with a correct CRC."""
    data = body.replace("\n", "\r\n").encode("ascii")
    return data + f"{crc16(data):04X}\r\n".encode()


# --- fixtures and CRC ----------------------------------------------------------------------


def test_fixtures_are_byte_exact_crlf() -> None:
    for name in ALL:
        data = load(name)
        assert data.startswith(b"/")
        assert data.endswith(b"\r\n")
        assert data.count(b"\n") == data.count(b"\r\n"), name


def test_crc16_is_crc16_arc() -> None:
    assert crc16(b"123456789") == 0xBB3D  # the published check value of CRC-16/ARC
    assert crc16(b"") == 0


@pytest.mark.parametrize("name", WITH_CRC)
def test_real_telegrams_pass_their_crc(name: str) -> None:
    telegram = parse_telegram(load(name))
    assert telegram.crc_ok is True
    assert telegram.invalid == 0


@pytest.mark.parametrize("name", WITHOUT_CRC)
def test_dsmr_2_and_3_have_no_crc(name: str) -> None:
    telegram = parse_telegram(load(name))
    assert telegram.crc_ok is None
    assert telegram.version is None
    assert telegram.invalid == 0
    assert telegram.unknown == 0


# --- golden values -------------------------------------------------------------------------

SPEC_EXAMPLE = {
    "dsmr_version": ("50", None),
    "timestamp": ("2010-12-09T11:30:20+01:00", None),
    "equipment_id": ("K8EG004046395507", None),
    "energy_delivered_tariff1": (Decimal("123456.789"), "kWh"),
    "energy_delivered_tariff2": (Decimal("123456.789"), "kWh"),
    "energy_returned_tariff1": (Decimal("123456.789"), "kWh"),
    "energy_returned_tariff2": (Decimal("123456.789"), "kWh"),
    "tariff": (2, None),
    "power_delivered": (Decimal("1.193"), "kW"),
    "power_returned": (Decimal("0.000"), "kW"),
    "power_failures": (4, None),
    "long_power_failures": (2, None),
    "voltage_sags_l1": (2, None),
    "voltage_sags_l2": (1, None),
    "voltage_sags_l3": (0, None),
    "voltage_swells_l1": (0, None),
    "voltage_swells_l2": (3, None),
    "voltage_swells_l3": (0, None),
    "text_message": ("0123456789:;<=>?" * 5, None),
    "voltage_l1": (Decimal("220.1"), "V"),
    "voltage_l2": (Decimal("220.2"), "V"),
    "voltage_l3": (Decimal("220.3"), "V"),
    "current_l1": (Decimal("1"), "A"),
    "current_l2": (Decimal("2"), "A"),
    "current_l3": (Decimal("3"), "A"),
    "power_delivered_l1": (Decimal("1.111"), "kW"),
    "power_delivered_l2": (Decimal("2.222"), "kW"),
    "power_delivered_l3": (Decimal("3.333"), "kW"),
    "power_returned_l1": (Decimal("4.444"), "kW"),
    "power_returned_l2": (Decimal("5.555"), "kW"),
    "power_returned_l3": (Decimal("6.666"), "kW"),
    "gas_device_type": (3, None),
    "gas_equipment_id": ("2222ABCD123456789", None),
    "gas_timestamp": ("2010-12-09T11:25:00+01:00", None),
    "gas_delivered": (Decimal("12785.123"), "m3"),
}


def test_dsmr5_spec_example_printed_crc_does_not_match() -> None:
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(load("dsmr50_spec_example.txt"))
    assert caught.value.reason == "crc"
    assert "EF2F" in str(caught.value)


def test_dsmr5_spec_example_golden() -> None:
    telegram = parse_telegram(load("dsmr50_spec_example.txt"), verify_crc=False)
    assert telegram.crc_ok is False
    assert telegram.header == "ISk5\\2MT382-1000"
    assert telegram.version == "50"
    assert values(telegram) == SPEC_EXAMPLE  # every field, and nothing else
    assert [r.name for r in telegram.readings] == list(SPEC_EXAMPLE)  # telegram order
    assert telegram.unknown == 0
    assert telegram.invalid == 0


def test_dsmr5_spec_example_with_its_crc_corrected() -> None:
    data = load("dsmr50_spec_example.txt")
    fixed = data.replace(b"!EF2F", f"!{crc16(data[: data.index(b'!') + 1]):04X}".encode())
    assert values(parse_telegram(fixed)) == SPEC_EXAMPLE


def test_dsmr5_real_iskra_am550() -> None:
    telegram = parse_telegram(load("dsmr50_iskra_am550.txt"))
    got = values(telegram)
    assert telegram.header == "ISK5\\2M550T-1012"
    assert got["timestamp"] == ("2019-03-24T15:05:41+01:00", None)
    assert got["equipment_id"] == ("E0044007131650618", None)
    assert got["energy_delivered_tariff1"] == (Decimal("3432.829"), "kWh")
    assert got["energy_delivered_tariff2"] == (Decimal("3224.632"), "kWh")
    assert got["power_delivered"] == (Decimal("0.433"), "kW")
    assert got["tariff"] == (1, None)
    assert got["power_failures"] == (5, None)
    assert got["long_power_failures"] == (3, None)
    assert got["voltage_l3"] == (Decimal("236.0"), "V")
    assert got["current_l3"] == (Decimal("2"), "A")
    assert got["power_delivered_l2"] == (Decimal("0.010"), "kW")
    assert not any(name.startswith("gas") for name in got)


def test_decimals_are_kept_as_written() -> None:
    got = values(parse_telegram(load("dsmr50_ndokter_v5.txt")))
    # The text's number of decimals survives: "0230.0" is 230.0, "00.070" is 0.070.
    assert str(got["voltage_l1"][0]) == "230.0"
    assert str(got["power_delivered_l1"][0]) == "0.070"
    assert str(got["current_l1"][0]) == "0.48"
    assert str(got["energy_returned_tariff2"][0]) == "0.000"
    assert str(got["gas_delivered"][0]) == "0.107"
    assert all(isinstance(v, Decimal) for v, unit in got.values() if unit is not None)


def test_dsmr5_second_mbus_channel_without_a_meter() -> None:
    got = values(parse_telegram(load("dsmr50_ndokter_v5.txt")))
    assert got["timestamp"] == ("2017-01-02T19:20:02+01:00", None)
    assert got["gas_delivered"] == (Decimal("0.107"), "m3")
    assert got["gas_timestamp"] == ("2017-01-02T16:10:05+01:00", None)
    assert got["gas_2_device_type"] == (3, None)
    assert got["gas_2_equipment_id"] == ("", None)


def test_dsmr5_two_gas_channels_the_one_with_an_id_is_gas() -> None:
    got = values(parse_telegram(load("dsmr50_two_mbus.txt")))
    assert got["timestamp"] == ("2020-04-26T22:33:25+02:00", None)  # S: summer time
    assert got["gas_equipment_id"] == ("G0039001936990619", None)
    assert got["gas_delivered"] == (Decimal("246.138"), "m3")
    assert got["gas_timestamp"] == ("2020-04-26T22:30:01+02:00", None)
    # Channel 1 reports a gas meter with no id and a dummy reading without a unit.
    assert got["gas_1_equipment_id"] == ("", None)
    assert got["gas_1_delivered"] == (Decimal("0"), None)
    assert got["gas_1_timestamp"] == ("1970-01-01T01:00:00+01:00", None)
    assert got["voltage_sags_l3"] == (192, None)


def test_dsmr42_kaifa() -> None:
    telegram = parse_telegram(load("dsmr42_kaifa.txt"))
    got = values(telegram)
    assert telegram.header == "KFM5KAIFA-METER"
    assert telegram.version == "42"
    assert got["timestamp"] == ("2016-11-13T20:57:57+01:00", None)
    # Not hex-encoded ASCII, so kept as sent.
    assert got["equipment_id"] == ("3960221976967177082151037881335713", None)
    assert got["energy_delivered_tariff1"] == (Decimal("1581.123"), "kWh")
    assert got["energy_delivered_tariff2"] == (Decimal("1435.706"), "kWh")
    assert got["power_delivered"] == (Decimal("2.027"), "kW")
    assert got["power_failures"] == (15, None)
    assert got["long_power_failures"] == (7, None)
    assert got["current_l2"] == (Decimal("6"), "A")
    assert got["power_delivered_l2"] == (Decimal("1.247"), "kW")
    assert got["gas_delivered"] == (Decimal("981.443"), "m3")
    assert got["gas_timestamp"] == ("2016-11-29T20:00:00+01:00", None)
    assert "voltage_l1" not in got  # DSMR 4.2 meters need not send voltages


def test_dsmr22_without_crc_and_legacy_gas_line() -> None:
    telegram = parse_telegram(load("dsmr22_iskra.txt"))
    got = values(telegram)
    assert telegram.header == "ISk5\\2MT382-1004"
    assert got["equipment_id"] == ("00000000000000", None)
    assert got["energy_delivered_tariff1"] == (Decimal("1.001"), "kWh")
    assert got["power_delivered"] == (Decimal("1.01"), "kW")
    assert got["power_returned"] == (Decimal("0.00"), "kW")
    assert got["limiter_threshold"] == (Decimal("999.00"), "kW")
    assert got["tariff"] == (1, None)
    # 0-1:24.3.0(161107190000)(00)(60)(1)(0-1:24.2.1)(m3) CRLF (00001.001): no S/W, no offset.
    assert got["gas_delivered"] == (Decimal("1.001"), "m3")
    assert got["gas_timestamp"] == ("2016-11-07T19:00:00", None)
    assert got["gas_valve_state"] == (1, None)


def test_dsmr30_hex_text_fields() -> None:
    got = values(parse_telegram(load("dsmr30_iskra.txt")))
    assert got["equipment_id"] == ("K8EG004046395507", None)
    assert got["text_message_code"] == ("012345678", None)
    assert got["limiter_threshold"] == (Decimal("16"), "A")  # unit as the telegram says
    assert got["gas_equipment_id"] == ("2222ABCD123456789", None)
    assert got["gas_timestamp"] == ("2009-02-12T16:00:00", None)


def test_emucs_fluvius_belgium() -> None:
    telegram = parse_telegram(load("emucs_fluvius_v171.txt"))
    got = values(telegram)
    assert telegram.version == "50217"
    assert telegram.unknown == 0
    assert got["emucs_version"] == ("50217", None)
    assert got["equipment_id"] == ("1SAG3101021605", None)
    assert got["timestamp"] == ("2020-05-12T13:54:09+02:00", None)
    assert got["energy_delivered_tariff2"] == (Decimal("15.758"), "kWh")
    assert got["energy_returned_tariff2"] == (Decimal("0.011"), "kWh")
    assert got["current_average_demand"] == (Decimal("2.351"), "kW")
    assert got["maximum_demand_month"] == (Decimal("2.589"), "kW")
    assert got["maximum_demand_month_timestamp"] == ("2020-05-09T13:45:58+02:00", None)
    assert got["breaker_state"] == (1, None)
    assert got["limiter_threshold"] == (Decimal("999.9"), "kW")
    assert got["fuse_threshold_l1"] == (Decimal("999"), "A")
    assert got["current_l1"] == (Decimal("0.00"), "A")
    # Gas on channel 1 under 24.2.3, a water meter (type 7) on channel 2 under 24.2.1.
    assert got["gas_delivered"] == (Decimal("112.384"), "m3")
    assert got["gas_equipment_id"] == ("7FLO2119033733", None)
    assert got["gas_valve_state"] == (1, None)
    assert got["water_delivered"] == (Decimal("872.234"), "m3")
    assert got["water_device_type"] == (7, None)
    assert got["water_timestamp"] == ("2020-05-12T13:45:58+02:00", None)


def test_units_come_from_the_telegram() -> None:
    telegram = parse_telegram(load("sagemcom_t210_d_r.txt"))
    got = values(telegram)
    assert got["energy_delivered_total"] == (Decimal("6545766"), "Wh")
    assert got["energy_delivered_tariff1"] == (Decimal("5017120"), "Wh")
    assert got["power_delivered"] == (Decimal("286"), "W")
    assert got["reactive_energy_returned_total"] == (Decimal("3897726"), "varh")
    assert got["reactive_power_returned"] == (Decimal("166"), "var")
    assert telegram.unknown == 4  # 1-0:3.8.1, 3.8.2, 4.8.1, 4.8.2 are not mapped


def test_unpadded_crc_and_heat_meter() -> None:
    telegram = parse_telegram(load("warmtelink_unpadded_crc.txt"))
    assert telegram.crc_ok is True
    got = values(telegram)
    assert got["heat_delivered"] == (Decimal("240.860"), "GJ")
    assert got["heat_device_type"] == (4, None)
    assert got["heat_equipment_id"] == ("621848012D2C0B0C", None)


def test_telegram_get() -> None:
    telegram = parse_telegram(load("dsmr42_kaifa.txt"))
    assert telegram.get("tariff") == Reading("tariff", 2, None)
    assert telegram.get("no_such_field") is None


def test_unknown_device_type_and_lowercase_crc() -> None:
    data = with_crc(
        "/XMX5TEST\n\n1-3:0.2.8(50)\n0-3:24.1.0(099)\n0-3:24.2.1(200101000000W)(00001.5*GJ)\n"
        "0-0:96.99.9(1)\n!"
    )
    telegram = parse_telegram(data.replace(data[-6:-2], data[-6:-2].lower()))
    assert values(telegram)["mbus3_delivered"] == (Decimal("1.5"), "GJ")
    assert values(telegram)["mbus3_device_type"] == (99, None)
    assert telegram.unknown == 1


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "offset", "expected"),
    [
        ("170102192002W", timedelta(hours=1), "2017-01-02T19:20:02+01:00"),
        ("200426223325S", timedelta(hours=1), "2020-04-26T22:33:25+02:00"),
        ("200426223325S", timedelta(0), "2020-04-26T22:33:25+01:00"),
        ("170102192002W", timedelta(hours=2), "2017-01-02T19:20:02+02:00"),
        ("170102192002", timedelta(hours=1), "2017-01-02T19:20:02"),
    ],
)
def test_timestamp_offsets(stamp: str, offset: timedelta, expected: str) -> None:
    data = with_crc(f"/XMX5TEST\n\n0-0:1.0.0({stamp})\n!")
    telegram = parse_telegram(data, standard_offset=offset)
    assert values(telegram)["timestamp"] == (expected, None)


def test_standard_offset_must_be_a_real_offset() -> None:
    with pytest.raises(ValueError, match="standard_offset"):
        parse_telegram(load("dsmr42_kaifa.txt"), standard_offset=timedelta(hours=30))


# --- broken objects inside a telegram ------------------------------------------------------


def test_bad_objects_are_counted_not_fatal() -> None:
    data = with_crc(
        "/XMX5TEST\n\n1-3:0.2.8(50)\n"
        "hello world\n"  # not an object
        "0-0:1.0.0(171399999999W)\n"  # month 13
        "1-0:1.8.1(12x.4*kWh)\n"  # not a number
        "0-0:96.7.21(5*kWh)\n"  # a counter with a unit
        "1-0:1.7.0(1.0*kW)(2.0*kW)\n"  # two values for one
        "1-0:1.7.0(01.234*kW)\n"  # a valid object still counts once the others failed
        "1-0:1.7.0(09.999*kW)\n"  # a repeated object: the first one stands
        "1-0:2.7.0(00.000*kW)trailing junk\n"
        "!"
    )
    telegram = parse_telegram(data)
    got = values(telegram)
    assert got["power_delivered"] == (Decimal("1.234"), "kW")
    assert got["power_returned"] == (Decimal("0.000"), "kW")
    assert "timestamp" not in got
    assert "energy_delivered_tariff1" not in got
    assert "power_failures" not in got
    assert telegram.invalid == 7


def test_dsmr4_telegram_without_crc_is_rejected() -> None:
    data = load("dsmr42_kaifa.txt").replace(b"!6796", b"!")
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason == "crc"


# --- broken telegrams ----------------------------------------------------------------------


def test_wrong_crc() -> None:
    data = load("dsmr50_ndokter_v5.txt").replace(b"(00.244*kW)", b"(00.245*kW)")
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason == "crc"
    assert isinstance(caught.value, ValueError)
    telegram = parse_telegram(data, verify_crc=False)
    assert telegram.crc_ok is False
    assert values(telegram)["power_delivered"] == (Decimal("0.245"), "kW")


def test_crc_digit_flipped() -> None:
    with pytest.raises(DsmrParseError, match="crc"):
        parse_telegram(load("dsmr42_kaifa.txt").replace(b"!6796", b"!6797"))


@pytest.mark.parametrize("name", ALL)
def test_truncated(name: str) -> None:
    data = load(name)
    for cut in (1, 20, len(data) // 2, data.index(b"!")):
        with pytest.raises(DsmrParseError) as caught:
            parse_telegram(data[:cut])
        assert caught.value.reason == "truncated"


def test_every_prefix_fails_cleanly() -> None:
    data = load("dsmr50_ndokter_v5.txt")
    for cut in range(len(data) - 2):
        with pytest.raises(DsmrParseError):
            parse_telegram(data[:cut])
    # Without its final CRLF the telegram is still complete: the CRC has four digits.
    assert parse_telegram(data[:-2]).crc_ok is True


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"1-0:1.8.1(000004.426*kWh)\r\n!6EEE\r\n",
        b"\x00\xff/ISk5\r\n\r\n!\r\n",
        b"/ISk5\r\n\r\n!1234\r\nmore\r\n",
        b"/ISk5\r\n\r\n!12G4\r\n",
        b"/ISk5\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n/ISk5\r\n\r\n!\r\n",
        b"/ISk5\r\n\r\n1-0:1.8.1(000\x00004.426*kWh)\r\n!\r\n",
        b"/ISk5\r\n\r\n1-0:1.8.1(000\xe9004.426*kWh)\r\n!\r\n",
        b"/ISk5!\r\n",
    ],
)
def test_garbage(data: bytes) -> None:
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason in ("garbage", "truncated")


def test_noise_in_a_crc_telegram_is_a_crc_failure() -> None:
    data = load("dsmr50_ndokter_v5.txt").replace(b"(0230.0*V)", b"(02\xff0.0*V)")
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason == "crc"


def test_noise_in_a_telegram_without_crc_is_garbage() -> None:
    data = load("dsmr22_iskra.txt").replace(b"(0001.01*kW)", b"(0001\x13.01*kW)")
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason == "garbage"


def test_too_long() -> None:
    data = b"/ISk5\r\n\r\n" + b"0-0:96.13.0(41)\r\n" * 600 + b"!\r\n"
    assert len(data) > MAX_TELEGRAM_BYTES
    with pytest.raises(DsmrParseError) as caught:
        parse_telegram(data)
    assert caught.value.reason == "too_long"


# --- TelegramBuffer ------------------------------------------------------------------------


def test_buffer_splits_a_stream_with_garbage_between_telegrams() -> None:
    garbage = [b"", b"\x00\xff\xfe noise\r\n", b"!\r\n", b"  25803103\r\n\xff\xff\r\n", b"\r\n"]
    frames = [load(name) for name in ALL]
    stream = b"".join(g + f for g, f in zip(garbage * 3, frames, strict=False))
    buffer = TelegramBuffer()
    assert buffer.feed(stream) == frames
    assert buffer.discarded_bytes == len(stream) - sum(map(len, frames))
    assert len(buffer) == 0


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1000])
def test_buffer_telegram_split_across_many_feeds(chunk: int) -> None:
    stream = b"".join(load(name) for name in ALL)
    buffer = TelegramBuffer()
    frames: list[bytes] = []
    for i in range(0, len(stream), chunk):
        frames += buffer.feed(stream[i : i + chunk])
    assert frames == [load(name) for name in ALL]
    assert buffer.discarded_bytes == 0


def test_buffer_joins_the_stream_half_way_through_a_telegram() -> None:
    telegram = load("dsmr50_ndokter_v5.txt")
    tail = telegram[len(telegram) // 2 :]
    buffer = TelegramBuffer()
    assert buffer.feed(tail) == []
    assert buffer.feed(telegram) == [telegram]
    assert buffer.discarded_bytes == len(tail)


def test_buffer_drops_a_telegram_cut_off_by_the_next_one() -> None:
    first, second = load("dsmr42_kaifa.txt"), load("dsmr50_ndokter_v5.txt")
    cut = first[:300]
    buffer = TelegramBuffer()
    assert buffer.feed(cut) == []
    assert buffer.feed(second) == [second]
    assert buffer.discarded_bytes == len(cut)


def test_buffer_drops_a_telegram_whose_end_line_is_corrupted() -> None:
    broken = load("dsmr42_kaifa.txt").replace(b"!6796", b"!6\x0096")
    good = load("dsmr50_ndokter_v5.txt")
    buffer = TelegramBuffer()
    assert buffer.feed(broken + good) == [good]
    assert buffer.discarded_bytes == len(broken)


def test_buffer_binary_noise() -> None:
    noise = bytes(range(256)).replace(b"/", b"").replace(b"!", b"") * 3
    telegram = load("emucs_fluvius_v171.txt")
    buffer = TelegramBuffer()
    assert buffer.feed(noise + telegram + noise) == [telegram]
    assert buffer.discarded_bytes == 2 * len(noise)


def test_buffer_is_bounded() -> None:
    buffer = TelegramBuffer(max_size=1024)
    start = b"/ISk5\r\n\r\n"
    assert buffer.feed(start) == []
    for _ in range(100):
        assert buffer.feed(b"0-0:96.13.0(41)\r\n") == []
        assert len(buffer) <= 1024
    assert buffer.overflows == 1
    assert buffer.discarded_bytes > 1024
    # The rest of the over-long telegram is dropped, and the next telegram comes through.
    telegram = load("dsmr42_kaifa.txt")
    assert buffer.feed(b"0-0:96.13.0(41)\r\n!\r\n" + telegram) == [telegram]


def test_buffer_clear() -> None:
    buffer = TelegramBuffer()
    buffer.feed(b"/ISk5\r\n")
    buffer.clear()
    assert len(buffer) == 0
    assert buffer.discarded_bytes == 7
    with pytest.raises(ValueError, match="max_size"):
        TelegramBuffer(max_size=4)


def test_decoder_counts_by_reason() -> None:
    good = load("dsmr50_ndokter_v5.txt")
    bad = good.replace(b"(00.244*kW)", b"(00.245*kW)")
    decoder = DsmrDecoder()
    telegrams = decoder.feed(good + b"noise" + bad + load("dsmr22_iskra.txt"))
    assert [t.header for t in telegrams] == ["ISk5\\2MT382-1000", "ISk5\\2MT382-1004"]
    assert decoder.telegrams == 2
    assert decoder.errors == {"crc": 1}
    assert decoder.last_error is not None
    assert decoder.last_error.reason == "crc"
    assert decoder.buffer.discarded_bytes == len(b"noise")
    with pytest.raises(ValueError, match="standard_offset"):
        DsmrDecoder(standard_offset=timedelta(days=1))


# --- properties ----------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=2048))
def test_any_bytes_raise_only_dsmr_parse_error(data: bytes) -> None:
    with contextlib.suppress(DsmrParseError):
        parse_telegram(data)


@PROPERTY
@given(st.binary(max_size=400))
def test_any_bytes_after_a_start_raise_only_dsmr_parse_error(data: bytes) -> None:
    for candidate in (b"/" + data, b"/X\r\n\r\n" + data + b"\r\n!\r\n"):
        with contextlib.suppress(DsmrParseError):
            parse_telegram(candidate, verify_crc=False)


@PROPERTY
@given(
    st.sampled_from(ALL),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_telegrams_raise_only_dsmr_parse_error(
    name: str, edits: list[tuple[int, int]]
) -> None:
    data = bytearray(load(name))
    for position, byte in edits:
        data[position % len(data)] = byte
    for verify in (True, False):
        try:
            telegram = parse_telegram(bytes(data), verify_crc=verify)
        except DsmrParseError:
            continue
        assert all(isinstance(r.value, int | Decimal | str) for r in telegram.readings)


@PROPERTY
@given(st.lists(st.binary(max_size=300), max_size=40), st.integers(64, 4096))
def test_buffer_never_raises_and_stays_bounded(chunks: list[bytes], max_size: int) -> None:
    buffer = TelegramBuffer(max_size=max_size)
    for chunk in chunks:
        for frame in buffer.feed(chunk):
            assert frame.startswith(b"/")
            assert frame.endswith(b"\r\n")
            assert len(frame) <= max_size + len(chunk)
        assert len(buffer) <= max_size


@PROPERTY
@given(
    st.sampled_from(ALL),
    st.binary(max_size=200).filter(lambda b: b"!" not in b),
    st.lists(st.integers(0, 2000), max_size=10),
)
def test_buffer_finds_a_telegram_behind_noise_split_anywhere(
    name: str, noise: bytes, cuts: list[int]
) -> None:
    telegram = load(name)
    stream = noise + telegram
    buffer = TelegramBuffer()
    frames: list[bytes] = []
    previous = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        frames += buffer.feed(stream[previous:cut])
        previous = cut
    assert frames == [telegram]
    assert buffer.discarded_bytes == len(noise)
