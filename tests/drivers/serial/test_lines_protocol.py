"""Line parsing for ``serial.lines``: JSON, key=value and regex lines, good and malformed (pure)."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.serial.lines_protocol import (
    FieldOverride,
    LineBuffer,
    LineParseError,
    LineParser,
    Reading,
    normalize_key,
)

PROPERTY = settings(max_examples=300, deadline=None, database=None)


def as_dict(readings: list[Reading]) -> dict[str, tuple[object, str | None]]:
    return {r.name: (r.value, r.unit) for r in readings}


def reason_of(parser: LineParser, line: bytes | str) -> str:
    with pytest.raises(LineParseError) as caught:
        parser.parse(line)
    assert isinstance(caught.value, ValueError)
    return caught.value.reason


# --- JSON ----------------------------------------------------------------------------------


def test_json_line() -> None:
    line = b'{"temp": 23.40, "hum": 41, "door": true, "state": "idle", "light": false}\r\n'
    readings = LineParser("json").parse(line)
    assert readings == [
        Reading("temp", Decimal("23.40"), None),
        Reading("hum", Decimal("41"), None),
        Reading("door", True, None),
        Reading("state", "idle", None),
        Reading("light", False, None),
    ]
    assert str(readings[0].value) == "23.40"  # the decimals are kept as written


def test_json_strings_stay_strings_and_null_is_no_value() -> None:
    got = as_dict(LineParser("json").parse('{"id": "0042", "gone": null, "exp": 1.5e3}'))
    assert got == {"id": ("0042", None), "exp": (Decimal("1.5E+3"), None)}


def test_json_nested_objects_are_flattened() -> None:
    line = '{"air": {"temp": 21.5, "Rel Hum": 40}, "a": {"b": {"c": {"d": 1}}}}'
    got = as_dict(LineParser("json").parse(line))
    assert got == {
        "air_temp": (Decimal("21.5"), None),
        "air_rel_hum": (Decimal("40"), None),
        "a_b_c_d": (Decimal("1"), None),
    }


def test_json_keys_are_normalised() -> None:
    got = as_dict(LineParser("json").parse('{"Temp C": 1, "batteryLevel": 2, "1wire": 3}'))
    assert list(got) == ["temp_c", "battery_level", "f_1wire"]


def test_json_keys_stay_right_past_the_key_cache_bound() -> None:
    # Normalised keys are remembered (a bounded cache): a device that sends a new key
    # on every line still gets each one normalised, and repeats answer the same.
    parser = LineParser("json")
    for i in range(1500):
        line = json.dumps({f"Key{i}Value": i, "batteryLevel": 1, "bad key!": 2})
        assert list(as_dict(parser.parse(line))) == [f"key{i}_value", "battery_level", "bad_key"]
    assert reason_of(parser, '{"!!": 1}') == "bad_key"
    assert reason_of(parser, '{"!!": 1}') == "bad_key"  # a failure is not cached as a name


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{", "invalid_json"),
        (b'{"temp": 21.5', "invalid_json"),
        (b'{"temp": 21,5}', "invalid_json"),
        (b"{'temp': 21.5}", "invalid_json"),
        (b'{"temp": NaN}', "invalid_json"),
        (b'{"temp": -Infinity}', "invalid_json"),
        (b'{"temp": 1} {"temp": 2}', "invalid_json"),
        (b"temp=21.5", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
        (b'{"temps": [20.5, 21.0]}', "unsupported"),
        (b'{"a": {"b": {"c": {"d": {"e": 1}}}}}', "unsupported"),
        (b'{"temp": 1e999}', "bad_value"),
        (b'{"temp": 1, "Temp": 2}', "bad_key"),
        (b'{"a_b": 1, "a": {"b": 2}}', "bad_key"),
        (b'{"\xc2\xb0": 1}', "bad_key"),
        (b'{"": 1}', "bad_key"),
        (b"\xff\xfe{}", "undecodable"),
        (b'{"t": 1}\x00\x01', "binary"),
        (b"\x1b[2J", "binary"),
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b'{"t": "' + b"x" * 600 + b'"}', "too_long"),
    ],
)
def test_json_malformed(line: bytes, reason: str) -> None:
    assert reason_of(LineParser("json"), line) == reason


def test_json_deep_nesting_is_rejected_not_crashing() -> None:
    parser = LineParser("json", max_line_length=200_000)
    assert reason_of(parser, "[" * 100_000) == "invalid_json"
    assert reason_of(parser, '{"a":' * 50 + "1" + "}" * 50) == "unsupported"


def test_json_big_integer_stays_exact_up_to_the_range_bound() -> None:
    digits = "9" * 300
    got = as_dict(LineParser("json").parse(f'{{"n": {digits}}}'))
    assert got["n"] == (Decimal(digits), None)
    # Beyond 1e300 a number is noise, and would overflow floats downstream.
    assert reason_of(LineParser("json", max_line_length=6000), f'{{"n": 1{"0" * 5000}}}') == (
        "bad_value"
    )


# --- key=value -----------------------------------------------------------------------------


def test_kv_line() -> None:
    line = 't=21.50 rh=40, door=OPEN;fan=on heater=Off  msg="hello, world" neg=-3 empty=\r\n'
    got = as_dict(LineParser("kv").parse(line))
    assert got == {
        "t": (Decimal("21.50"), None),
        "rh": (Decimal("40"), None),
        "door": ("OPEN", None),
        "fan": (True, None),
        "heater": (False, None),
        "msg": ("hello, world", None),
        "neg": (Decimal("-3"), None),
    }
    assert str(got["t"][0]) == "21.50"


def test_kv_quoted_values_stay_strings_and_unescape() -> None:
    got = as_dict(LineParser("kv").parse(r'n="42" q="say \"hi\" \\ bye" e=""'))
    assert got == {"n": ("42", None), "q": ('say "hi" \\ bye', None), "e": ("", None)}


def test_kv_unit_suffix_stays_a_string() -> None:
    assert as_dict(LineParser("kv").parse("t=21.5C")) == {"t": ("21.5C", None)}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("t=21.5 garbage", "bad_kv"),
        ("t", "bad_kv"),
        ("=5", "bad_kv"),
        ("a=b=c", "bad_kv"),
        ('a="unterminated', "bad_kv"),
        ('a="x"y', "bad_kv"),
        ("t=1 t=2", "bad_key"),
        ("Temp=1 temp=2", "bad_key"),
        ("°=1", "bad_key"),
        ("t=1\x07", "binary"),
        ("t=\x851", "binary"),
        ("", "empty"),
    ],
)
def test_kv_malformed(line: str, reason: str) -> None:
    assert reason_of(LineParser("kv"), line) == reason


def test_kv_encoding() -> None:
    assert reason_of(LineParser("kv", encoding="idna"), b"xn--zz") == "undecodable"
    parser = LineParser("kv", encoding="latin-1")
    assert as_dict(parser.parse("unit=°C".encode("latin-1"))) == {"unit": ("°C", None)}
    assert reason_of(LineParser("kv"), "unit=°C".encode("latin-1")) == "undecodable"


# --- regex ---------------------------------------------------------------------------------

WEATHER = r"T=(?P<Temp>-?\d+(?:\.\d+)?)C(?: H=(?P<humidity>\d+)%)?(?: (?P<Status>\w+))?"


def test_regex_line() -> None:
    got = as_dict(LineParser("regex", pattern=WEATHER).parse(b"T=-4.50C H=81% ok\n"))
    assert got == {
        "temp": (Decimal("-4.50"), None),
        "humidity": (Decimal("81"), None),
        "status": ("ok", None),
    }


def test_regex_groups_that_did_not_match_give_no_reading() -> None:
    got = as_dict(LineParser("regex", pattern=WEATHER).parse("T=21C"))
    assert got == {"temp": (Decimal("21"), None)}


def test_regex_booleans() -> None:
    parser = LineParser("regex", pattern=r"(?P<a>\w+),(?P<b>\w+)")
    assert as_dict(parser.parse("ON,false")) == {"a": (True, None), "b": (False, None)}


@pytest.mark.parametrize("line", ["T=21", "T=21C H=", "xT=21C", "T=21C H=40% ok extra", "hello"])
def test_regex_no_match(line: str) -> None:
    assert reason_of(LineParser("regex", pattern=WEATHER), line) == "no_match"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (None, "needs a pattern"),
        ("", "needs a pattern"),
        ("(?P<t>", "not a valid regular expression"),
        (r"T=(\d+)", "no named groups"),
        (r"(?P<Temp>\d+) (?P<temp>\d+)", "both name the field 'temp'"),
    ],
)
def test_regex_pattern_is_validated(pattern: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LineParser("regex", pattern=pattern)


# --- construction --------------------------------------------------------------------------


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="format"):
        LineParser("csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only used with format: regex"):
        LineParser("json", pattern="(?P<a>.)")
    with pytest.raises(ValueError, match="max_line_length"):
        LineParser("json", max_line_length=0)
    with pytest.raises(ValueError, match="encoding"):
        LineParser("json", encoding="no-such-codec")
    with pytest.raises(ValueError, match="encoding"):
        LineParser("json", encoding="rot13")
    with pytest.raises(ValueError, match="both name the field"):
        LineParser("kv", fields={"Temp C": FieldOverride(), "temp_c": FieldOverride()})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "float"}, "type must be"),
        ({"rename": "Temp"}, "rename must be lower_snake"),
        ({"rename": "1x"}, "rename must be lower_snake"),
        ({"scale": Decimal("NaN")}, "scale must be a finite Decimal"),
        ({"offset": 1.5}, "offset must be a finite Decimal"),
        ({"type": "boolean", "scale": Decimal(2)}, "apply to numbers"),
        ({"type": "string", "offset": Decimal(1)}, "apply to numbers"),
    ],
)
def test_field_override_is_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FieldOverride(**kwargs)  # type: ignore[arg-type]


# --- overrides, types and scaling ----------------------------------------------------------


def test_override_unit_rename_and_type() -> None:
    parser = LineParser(
        "kv",
        fields={
            "Temp C": FieldOverride(type="numeric", unit="°C", rename="temperature"),
            "count": FieldOverride(type="int"),
            "relay": FieldOverride(type="boolean"),
            "code": FieldOverride(type="string"),
            "flag": FieldOverride(type="string"),
        },
    )
    got = as_dict(parser.parse("temp_c=21.50 count=7.0 relay=1 code=007.50 flag=on"))
    assert got == {
        "temperature": (Decimal("21.50"), "°C"),
        "count": (7, None),
        "relay": (True, None),
        "code": ("007.50", None),
        "flag": ("on", None),  # a declared type works on the text as sent
    }
    assert isinstance(got["count"][0], int)


def test_override_numeric_from_a_json_string() -> None:
    parser = LineParser("json", fields={"t": FieldOverride(type="numeric", unit="°C")})
    assert as_dict(parser.parse('{"t": " 21.50 "}')) == {"t": (Decimal("21.50"), "°C")}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("yes", True), ("No", False), ("ON", True), ("0", False), ("1", True), ("true", True)],
)
def test_override_boolean_spellings(raw: str, expected: bool) -> None:
    parser = LineParser("kv", fields={"b": FieldOverride(type="boolean")})
    assert as_dict(parser.parse(f"b={raw}")) == {"b": (expected, None)}


def test_override_numeric_rejects_a_json_boolean() -> None:
    parser = LineParser("json", fields={"t": FieldOverride(type="numeric")})
    with pytest.raises(LineParseError, match="t: expected a number, got True"):
        parser.parse('{"t": true}')


def test_override_boolean_from_json() -> None:
    parser = LineParser("json", fields={"b": FieldOverride(type="boolean")})
    assert as_dict(parser.parse('{"b": 1}')) == {"b": (True, None)}
    assert as_dict(parser.parse('{"b": false}')) == {"b": (False, None)}
    assert reason_of(parser, '{"b": 2}') == "bad_value"


def test_scaling_keeps_decimals() -> None:
    parser = LineParser(
        "kv",
        fields={
            "t": FieldOverride(scale=Decimal("0.1"), unit="°C"),
            "p": FieldOverride(offset=Decimal("-1013.25"), unit="hPa"),
            "v": FieldOverride(type="int", scale=Decimal("1000"), unit="mV"),
            "f": FieldOverride(scale=Decimal("1.8"), offset=Decimal("32")),
        },
    )
    got = as_dict(parser.parse("t=215 p=1020.00 v=3.301 f=21.5"))
    assert got == {
        "t": (Decimal("21.5"), "°C"),
        "p": (Decimal("6.75"), "hPa"),
        "v": (3301, "mV"),
        "f": (Decimal("70.70"), None),
    }
    assert str(got["p"][0]) == "6.75"
    assert str(got["f"][0]) == "70.70"


@pytest.mark.parametrize(
    ("fields", "line", "detail"),
    [
        ({"t": FieldOverride(type="numeric")}, "t=warm", "t: 'warm' is not a number"),
        ({"t": FieldOverride(type="numeric")}, "t=on", "t: 'on' is not a number"),
        ({"t": FieldOverride(type="int")}, "t=21.5", "t: 21.5 is not a whole number"),
        ({"t": FieldOverride(scale=Decimal(2))}, "t=warm", "cannot be scaled"),
        ({"t": FieldOverride(offset=Decimal(2))}, "t=true", "cannot be scaled"),
        ({"t": FieldOverride(type="boolean")}, "t=maybe", "t: expected a boolean"),
        ({"t": FieldOverride(scale=Decimal("1e300"))}, "t=1e300", "cannot scale"),
        ({"t": FieldOverride(rename="u")}, "t=1 u=2", "two values for the field 'u'"),
    ],
)
def test_override_mismatch(fields: dict[str, FieldOverride], line: str, detail: str) -> None:
    with pytest.raises(LineParseError, match=detail) as caught:
        LineParser("kv", fields=fields).parse(line)
    assert caught.value.reason in ("bad_value", "bad_key")


# --- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("temp", "temp"),
        ("Temp C", "temp_c"),
        ("tempC", "temp_c"),
        ("batteryLevel", "battery_level"),
        ("CO2 (ppm)", "co2_ppm"),
        ("pm2.5", "pm2_5"),
        ("Température", "temperature"),
        ("Temp °C", "temp_c"),
        ("__x__", "x"),
        ("1wire", "f_1wire"),
        ("HTTPCode", "httpcode"),
    ],
)
def test_normalize_key(key: str, expected: str) -> None:
    assert normalize_key(key) == expected


@pytest.mark.parametrize("key", ["", "  ", "°", "---"])
def test_normalize_key_rejects_empty(key: str) -> None:
    with pytest.raises(ValueError, match="no letters or digits"):
        normalize_key(key)


# --- LineBuffer ----------------------------------------------------------------------------


def test_line_buffer_splits_crlf_lf_and_cr() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"a=1\r\nb=2\nc=3\rd=") == [b"a=1", b"b=2", b"c=3"]
    assert len(buffer) == 2
    assert buffer.feed(b"4\r\n\r\n") == [b"d=4"]
    assert buffer.discarded_bytes == 0


def test_line_buffer_byte_by_byte() -> None:
    buffer = LineBuffer()
    lines: list[bytes] = []
    for byte in b'{"t": 21.5}\r\n{"t": 21.6}\r\n':
        lines += buffer.feed(bytes([byte]))
    assert lines == [b'{"t": 21.5}', b'{"t": 21.6}']


def test_line_buffer_drops_overlong_lines() -> None:
    buffer = LineBuffer(max_line_length=16)
    assert buffer.feed(b"x" * 10) == []
    assert buffer.feed(b"x" * 10) == []  # now over the bound: dropped
    assert len(buffer) == 0
    assert buffer.feed(b"x" * 100) == []
    assert len(buffer) == 0
    assert buffer.feed(b"xx\nok=1\n" + b"y" * 17 + b"\nok=2\n") == [b"ok=1", b"ok=2"]
    assert buffer.overlong == 2
    assert buffer.discarded_bytes == 10 + 10 + 100 + 2 + 17


def test_line_buffer_clear() -> None:
    buffer = LineBuffer(max_line_length=4)
    buffer.feed(b"123456")
    buffer.clear()
    assert buffer.feed(b"ab\n") == [b"ab"]
    with pytest.raises(ValueError, match="max_line_length"):
        LineBuffer(max_line_length=0)


# --- properties ----------------------------------------------------------------------------

PARSERS = [
    LineParser("json"),
    LineParser("kv"),
    LineParser("regex", pattern=WEATHER),
    LineParser(
        "kv",
        fields={
            "t": FieldOverride(type="numeric", scale=Decimal("0.1"), offset=Decimal(5)),
            "n": FieldOverride(type="int"),
            "b": FieldOverride(type="boolean"),
            "s": FieldOverride(type="string", rename="text"),
        },
    ),
]


@PROPERTY
@given(st.binary(max_size=700) | st.text(max_size=700))
def test_any_input_raises_only_line_parse_error(line: bytes | str) -> None:
    for parser in PARSERS:
        try:
            readings = parser.parse(line)
        except LineParseError:
            continue
        for reading in readings:
            assert reading.name.isidentifier()
            assert reading.name == reading.name.lower()


@PROPERTY
@given(
    st.lists(
        st.sampled_from(["t", "n", "b", "s", "x", "T", "é"])
        | st.text(alphabet='=;, "\\abc.-+0123456789eEtruefalsonyTRUE\t', max_size=12),
        max_size=12,
    )
)
def test_kv_like_text_raises_only_line_parse_error(tokens: list[str]) -> None:
    line = "".join(tokens)
    for parser in PARSERS[1:]:
        with contextlib.suppress(LineParseError):
            parser.parse(line)


@PROPERTY
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True),
        st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-1e9, max_value=1e9),
        min_size=1,
        max_size=8,
    )
)
def test_numbers_round_trip_with_their_decimals(fields: dict[str, Decimal]) -> None:
    kv = " ".join(f"{key}={value}" for key, value in fields.items())
    js = "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in fields.items()) + "}"
    for parser, line in ((LineParser("kv"), kv), (LineParser("json"), js)):
        got = {r.name: r.value for r in parser.parse(line)}
        assert {k: str(v) for k, v in got.items()} == {k: str(v) for k, v in fields.items()}


@PROPERTY
@given(st.lists(st.binary(max_size=100), max_size=30), st.integers(1, 64))
def test_line_buffer_is_bounded(chunks: list[bytes], bound: int) -> None:
    buffer = LineBuffer(max_line_length=bound)
    for chunk in chunks:
        for line in buffer.feed(chunk):
            assert 0 < len(line) <= bound
            assert b"\r" not in line
            assert b"\n" not in line
        assert len(buffer) <= bound
