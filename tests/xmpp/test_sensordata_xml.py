"""Golden and property tests of the XEP-0323 wire format (hubd.xmpp.sensordata_xml).

Every example of digest §1.10 is used (verbatim, in tests/xmpp/xep0323_examples.py).
Where hubd writes a field differently from an example on purpose, the test says what it
changes:
FieldSpec names are lower_snake ('Temperature' -> 'temperature'), and hubd
writes the schema's ``identity`` where the example has the typo
``identification``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xep0323_examples import (
    ACCEPTED_1,
    ACCEPTED_4,
    DONE_4,
    FAILURE_2,
    FIELDS_1,
    FIELDS_4,
    REJECTION_3,
    REQ_1,
    REQ_4,
    REQ_6,
    STARTED_4,
)
from xmlcompare import assert_same_xml, parse, payload, roundtrip
from xmltrees import element_trees

from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, Quality, Value
from hubd.errors import BadRequest
from hubd.xmpp.sensordata_xml import (
    HISTORICAL,
    NS_SENSORDATA,
    NodeReadings,
    NodeRef,
    ReadRequest,
    build_accepted,
    build_cancelled,
    build_done,
    build_failure,
    build_fields,
    build_rejected,
    build_started,
    parse_cancel,
    parse_fields,
    parse_req,
)

# --- digest §1.10, verbatim (the rest of its examples: tests/xmpp/xep0323_examples.py) ---

CANCEL_8 = """<iq type='get'
  from='client@example.org/amr'
  to='device@example.org'
  id='S0008'>
  <cancel xmlns='urn:xmpp:iot:sensordata' seqnr='8'/>
</iq>"""

CANCELLED_8 = """<iq type='result'
  from='device@example.org'
  to='client@example.org/amr'
  id='S0008'>
  <cancelled xmlns='urn:xmpp:iot:sensordata' seqnr='8'/>
</iq>"""

LOCALIZED = """<numeric name='Temperature, Min' momentary='true' automaticReadout='true'
  value='23.4' unit='°C' module='Whatchamacallit' stringIds='1,2'/>"""

# --- fixtures of the model ------------------------------------------------------

DEVICE01 = NodeRef("Device01")
TEMPERATURE = FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C")
RUNTIME = FieldSpec(
    name="runtime", type=FieldType.NUMERIC, unit="h", categories=frozenset({Category.STATUS})
)
DEVICE_ID = FieldSpec(
    name="device_id", type=FieldType.STRING, categories=frozenset({Category.IDENTITY})
)
LOCAL = datetime(2013, 3, 7, 19, 0, 0)  # noqa: DTZ001 - the examples carry no zone


def _stanza(text: str) -> str:
    """``text`` with hubd's lower_snake names and the schema's ``identity``."""
    for old, new in (
        ("'Temperature'", "'temperature'"),
        ("'Runtime'", "'runtime'"),
        ("'Device ID'", "'device_id'"),
        ("identification=", "identity="),
    ):
        text = text.replace(old, new)
    return text


# --- golden: requests -------------------------------------------------------------


def test_momentaryparse_req() -> None:
    assert parse_req(payload(REQ_1)) == ReadRequest(
        seqnr=1,
        categories=frozenset({Category.MOMENTARY}),
        nodes=(),
        fields=frozenset(),
        from_=None,
        to=None,
        when=None,
    )


def test_scheduled_all_request_wants_everything() -> None:
    req = parse_req(payload(REQ_4))
    assert req.seqnr == 4
    assert req.categories == frozenset(Category)
    assert req.when == LOCAL
    assert req.wants(frozenset({Category.HISTORICAL_HOUR}))


def test_request_with_nodes_and_fields() -> None:
    req = parse_req(payload(REQ_6))
    assert req.nodes == (NodeRef("Device04"),)
    assert req.fields == frozenset({"Energy", "Power"})
    assert req.wants(frozenset({Category.MOMENTARY, Category.STATUS}))
    assert not req.wants(frozenset({Category.STATUS}))


def test_cancel() -> None:
    assert parse_cancel(payload(CANCEL_8)) == 8


# --- golden: responses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("built", "stanza"),
    [
        (build_accepted(1), ACCEPTED_1),
        (build_accepted(4, queued=True), ACCEPTED_4),
        (build_started(4), STARTED_4),
        (build_done(4), DONE_4),
        (build_cancelled(8), CANCELLED_8),
    ],
    ids=["accepted", "accepted-queued", "started", "done", "cancelled"],
)
def test_simple_responses(built: Element, stanza: str) -> None:
    assert_same_xml(built, payload(stanza))


def test_momentary_fields() -> None:
    value = FieldValue("temperature", Decimal("23.4"), datetime(2013, 3, 7, 16, 24, 30))  # noqa: DTZ001
    built = build_fields(1, [NodeReadings(DEVICE01, [(TEMPERATURE, value)])], done=True)
    assert_same_xml(built, payload(_stanza(FIELDS_1)))


def test_scheduled_fields() -> None:
    values = [
        (TEMPERATURE, FieldValue("temperature", Decimal("23.4"), LOCAL)),
        (RUNTIME, FieldValue("runtime", Decimal("12345"), LOCAL)),
        (DEVICE_ID, FieldValue("device_id", "Device01", LOCAL)),
    ]
    built = build_fields(4, [NodeReadings(DEVICE01, values)], done=False)
    assert_same_xml(built, payload(_stanza(FIELDS_4)))


def test_failure() -> None:
    stamp = datetime(2013, 3, 7, 17, 13, 30)  # noqa: DTZ001
    built = build_failure(2, [(DEVICE01, stamp, "Timeout.")], done=True)
    assert_same_xml(built, payload(FAILURE_2))


def test_rejection_is_an_rfc6120_error_with_no_sensordata_payload() -> None:
    # Built by the XMPP error mapping, not here: nothing of 0323 is in it.
    error = payload(REJECTION_3)
    assert error.tag == "error"
    assert not [e for e in error.iter() if str(e.tag).startswith(f"{{{NS_SENSORDATA}}}")]
    assert error[0].tag == "{urn:ietf:params:xml:ns:xmpp-stanzas}forbidden"


# XEP-0323 v0.2 (2014-03-10, xsf/xeps f3525dab), "Momentary read-out rejected",
# verbatim but for a tab turned into spaces: the form slixmpp's stock xep_0323 plugin
# still reads (digest §8.1).
REJECTED_V02 = """<iq type='error'
       from='device@clayster.com'
       to='client@clayster.com/amr'
       id='S0003'>
      <rejected xmlns='urn:xmpp:iot:sensordata' seqnr='3'>
         <error>Access denied.</error>
      </rejected>
   </iq>"""


def test_rejected_v02() -> None:
    assert_same_xml(build_rejected("3", "Access denied."), payload(REJECTED_V02))


# --- golden: parsing device-side fields ---------------------------------------------


def test_parse_momentary_fields() -> None:
    [(node, values)] = parse_fields(payload(FIELDS_1))
    assert node == DEVICE01
    [field] = values
    stamp = datetime(2013, 3, 7, 16, 24, 30)  # noqa: DTZ001
    assert field.as_field_value() == FieldValue("Temperature", Decimal("23.4"), stamp)
    assert (field.type, field.unit, field.lexical) == (FieldType.NUMERIC, "°C", "23.4")
    assert field.categories == frozenset({Category.MOMENTARY})


def test_parse_scheduled_fields_reads_identification_as_identity() -> None:
    [(_, values)] = parse_fields(payload(FIELDS_4))
    assert [(v.name, v.value) for v in values] == [
        ("Temperature", Decimal("23.4")),
        ("Runtime", Decimal("12345")),
        ("Device ID", "Device01"),
    ]
    assert values[1].categories == frozenset({Category.STATUS})
    assert values[2].categories == frozenset({Category.IDENTITY})
    assert all(v.quality == frozenset({Quality.AUTOMATIC_READOUT}) for v in values)


def test_parse_localized_field() -> None:
    fields = (
        f"<fields xmlns='{NS_SENSORDATA}' seqnr='9'><node nodeId='n'>"
        f"<timestamp value='2013-03-07T19:00:00'>{LOCALIZED}</timestamp></node></fields>"
    )
    [(_, [field])] = parse_fields(parse(fields))
    assert (field.name, field.module, field.string_ids) == (
        "Temperature, Min",
        "Whatchamacallit",
        "1,2",
    )


# --- decimals, qualities, liberal input --------------------------------------------


def test_decimals_are_kept() -> None:
    value = FieldValue("temperature", Decimal("23.40"), LOCAL)
    built = build_fields(1, [NodeReadings(DEVICE01, [(TEMPERATURE, value)])], done=True)
    [numeric] = built.iter(f"{{{NS_SENSORDATA}}}numeric")
    assert numeric.get("value") == "23.40"
    [(_, [field])] = parse_fields(roundtrip(built))
    assert field.lexical == "23.40"
    assert str(field.value) == "23.40"


def test_every_quality_flag_and_writable_are_written() -> None:
    spec = FieldSpec(name="level", type=FieldType.INT, writable=True)
    flags = frozenset({Quality.AUTOMATIC_READOUT, Quality.SIGNED})
    built = build_fields(
        1, [NodeReadings(DEVICE01, [(spec, FieldValue("level", 3, LOCAL, flags))])], done=True
    )
    [elem] = built.iter(f"{{{NS_SENSORDATA}}}int")
    assert elem.attrib == {
        "name": "level",
        "momentary": "true",
        "automaticReadout": "true",
        "signed": "true",
        "writable": "true",
        "value": "3",
    }


def test_numeric_without_unit_has_empty_unit_and_enum_has_data_type() -> None:
    plain = FieldSpec(name="ratio", type=FieldType.NUMERIC)
    mode = FieldSpec(name="mode", type=FieldType.ENUM, options=("auto", "manual"))
    values = [
        (plain, FieldValue("ratio", Decimal("0.5"), LOCAL)),
        (mode, FieldValue("mode", "auto", LOCAL)),
    ]
    built = build_fields(1, [NodeReadings(DEVICE01, values)], done=False)
    assert built.find(f".//{{{NS_SENSORDATA}}}numeric").get("unit") == ""  # type: ignore[union-attr]
    assert built.find(f".//{{{NS_SENSORDATA}}}enum").get("dataType") == "mode"  # type: ignore[union-attr]


def test_values_are_grouped_by_timestamp_and_node_ids_are_written() -> None:
    later = LOCAL + timedelta(minutes=1)
    node = NodeRef("n1", source_id="MeteringTopology", cache_type="gpio")
    values = [
        (TEMPERATURE, FieldValue("temperature", Decimal(1), LOCAL)),
        (RUNTIME, FieldValue("runtime", Decimal(2), later)),
        (DEVICE_ID, FieldValue("device_id", "x", LOCAL)),
    ]
    built = build_fields(3, [NodeReadings(node, values)], done=True)
    [(parsed_node, parsed)] = parse_fields(roundtrip(built))
    assert parsed_node == node
    stamps = built.findall(f".//{{{NS_SENSORDATA}}}timestamp")
    assert [len(s) for s in stamps] == [2, 1]
    assert [v.name for v in parsed] == ["temperature", "device_id", "runtime"]


def test_aware_timestamps_are_written_in_utc() -> None:
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    built = build_failure(1, [(DEVICE01, stamp, "x")], done=False)
    assert built.get("done") is None
    assert built[0].get("timestamp") == "2026-01-02T03:04:05Z"


def test_value_under_another_spec_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="runtime"):
        build_fields(
            1, [NodeReadings(DEVICE01, [(RUNTIME, FieldValue("temperature", 1, LOCAL))])], done=True
        )


def test_time_span_is_read_as_duration() -> None:
    fields = (
        f"<fields xmlns='{NS_SENSORDATA}' seqnr='1'><node nodeId='n'>"
        "<timestamp value='2013-03-07T19:00:00'>"
        "<timeSpan name='uptime' value='PT3M30S'/><unknown name='x' value='y'/>"
        "</timestamp></node></fields>"
    )
    [(_, [field])] = parse_fields(parse(fields))
    assert (field.type, field.value) == (FieldType.DURATION, timedelta(minutes=3, seconds=30))


def test_request_is_liberal() -> None:
    req = parse_req(
        parse(
            f"<req xmlns='{NS_SENSORDATA}' seqnr='5' historical='true' identification='1'"
            " serviceToken='t' deviceToken='d' userToken='u' shiny='yes'"
            " from='2026-01-01T00:00:00Z' to='2026-01-02T00:00:00'>"
            "<node nodeId='a' sourceId='' cacheType='gpio'/><other xmlns='x:y'/><mystery/>"
            "</req>"
        )
    )
    assert req.categories == HISTORICAL | {Category.IDENTITY}
    assert req.nodes == (NodeRef("a", None, "gpio"),)
    assert req.from_ == datetime(2026, 1, 1, tzinfo=UTC)


# --- malformed requests ---------------------------------------------------------------


def _req(attrs: str, children: str = "") -> Element:
    return parse(f"<req xmlns='{NS_SENSORDATA}' {attrs}>{children}</req>")


@pytest.mark.parametrize(
    ("attrs", "children", "message"),
    [
        ("", "", "req: missing attribute 'seqnr'"),
        ("seqnr=''", "", "req: attribute 'seqnr' is empty"),
        ("seqnr='abc'", "", "req: seqnr: not an integer: 'abc'"),
        ("seqnr='1.5'", "", "req: seqnr: not an integer"),
        ("seqnr='4294967296'", "", "req: seqnr: integer out of 32-bit range"),
        ("seqnr='" + "9" * 5000 + "'", "", "req: seqnr:"),
        ("seqnr='1' momentary='maybe'", "", "req: momentary: not an xs:boolean: 'maybe'"),
        ("seqnr='1' all='TRUE'", "", "req: all: not an xs:boolean"),
        ("seqnr='1' when='tomorrow'", "", "req: when: not an xs:dateTime: 'tomorrow'"),
        ("seqnr='1' from='2013-13-45T99:00:00'", "", "req: from: not an xs:dateTime"),
        (
            "seqnr='1' from='2013-03-08T00:00:00' to='2013-03-07T00:00:00'",
            "",
            r"req: from \(2013-03-08T00:00:00\) is after to \(2013-03-07T00:00:00\)",
        ),
        ("seqnr='1'", "<node/>", "req: node: missing attribute 'nodeId'"),
        ("seqnr='1'", "<node nodeId=''/>", "req: node: attribute 'nodeId' is empty"),
        ("seqnr='1'", "<field/>", "req: field: missing attribute 'name'"),
    ],
)
def test_malformedparse_req(attrs: str, children: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_req(_req(attrs, children))


def test_wrong_element_is_refused() -> None:
    with pytest.raises(BadRequest, match="expected <req"):
        parse_req(parse("<req xmlns='urn:xmpp:sn' seqnr='1'/>"))
    with pytest.raises(BadRequest, match="expected <cancel"):
        parse_cancel(_req("seqnr='1'"))
    with pytest.raises(BadRequest, match="cancel: seqnr: not an integer"):
        parse_cancel(parse(f"<cancel xmlns='{NS_SENSORDATA}' seqnr='x'/>"))


def test_from_after_to_across_zones() -> None:
    # 01:00+02:00 is 23:00Z the day before, so this interval runs backwards.
    with pytest.raises(BadRequest, match="is after to"):
        parse_req(_req("seqnr='1' from='2026-01-02T01:00:00+02:00' to='2026-01-01T22:30:00'"))


def test_malformed_field_value_in_fields() -> None:
    fields = (
        f"<fields xmlns='{NS_SENSORDATA}' seqnr='1'><node nodeId='n'>"
        "<timestamp value='2013-03-07T19:00:00'><int name='x' value='1e3'/></timestamp>"
        "</node></fields>"
    )
    with pytest.raises(BadRequest, match="fields: x: value: not an integer"):
        parse_fields(parse(fields))


# --- properties ----------------------------------------------------------------------

_NAMES = ["req", "node", "field", "cancel", "numeric", "timestamp", "mystery"]


@settings(max_examples=400, deadline=None)
@given(element_trees(f"{{{NS_SENSORDATA}}}req", _NAMES, [NS_SENSORDATA, "", "urn:other"]))
def test_random_requests_raise_only_badparse_req(elem: Element) -> None:
    try:
        req = parse_req(elem)
    except BadRequest:
        return
    assert isinstance(req.seqnr, int)


def _spec(kind: FieldType) -> FieldSpec:
    options = ("off", "eco", "on") if kind is FieldType.ENUM else ()
    return FieldSpec(
        name=f"f_{kind.value.lower()}", type=kind, unit="u", options=options, writable=True
    )


_XML_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=20)
_VALUE_STRATEGIES: dict[FieldType, st.SearchStrategy[Value]] = {
    FieldType.NUMERIC: st.integers(0, 6).flatmap(
        lambda places: st.decimals(-(10**12), 10**12, places=places)
    ),
    FieldType.BOOLEAN: st.booleans(),
    FieldType.INT: st.integers(-(2**31), 2**31 - 1),
    FieldType.LONG: st.integers(-(2**63), 2**63 - 1),
    FieldType.STRING: _XML_TEXT,
    FieldType.ENUM: st.sampled_from(["off", "eco", "on"]),
    FieldType.DATE: st.dates(),
    FieldType.TIME: st.times(),
    FieldType.DATETIME: st.datetimes(timezones=st.just(UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
    ),
    FieldType.DURATION: st.timedeltas(timedelta(days=-(10**6)), timedelta(days=10**6)),
}
_STAMPS = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(  # noqa: DTZ001
    lambda d: d.replace(microsecond=0)
)
_QUALITY = st.frozensets(st.sampled_from(list(Quality)), min_size=1)


@st.composite
def readings(draw: st.DrawFn) -> tuple[FieldSpec, FieldValue]:
    kind = draw(st.sampled_from(list(FieldType)))
    spec = _spec(kind)
    return spec, FieldValue(spec.name, draw(_VALUE_STRATEGIES[kind]), draw(_STAMPS), draw(_QUALITY))


@settings(max_examples=300, deadline=None)
@given(st.lists(readings(), min_size=1, max_size=8))
def test_fields_round_trip_every_type(values: list[tuple[FieldSpec, FieldValue]]) -> None:
    built = build_fields(7, [NodeReadings(DEVICE01, values)], done=True)
    [(node, parsed)] = parse_fields(roundtrip(built))
    assert node == DEVICE01
    by_stamp = sorted(
        values,
        key=lambda sv: list(dict.fromkeys(v.timestamp for _, v in values)).index(sv[1].timestamp),
    )
    assert [p.as_field_value() for p in parsed] == [v for _, v in by_stamp]
    assert [p.type for p in parsed] == [s.type for s, _ in by_stamp]
    assert all(p.writable for p in parsed)


@pytest.mark.parametrize(
    ("kind", "value", "lexical"),
    [
        (FieldType.DATE, date(2013, 5, 1), "2013-05-01"),
        (FieldType.TIME, time(8, 0, 0), "08:00:00"),
        (FieldType.TIME, time(8, 0, 0, tzinfo=UTC), "08:00:00Z"),
        (FieldType.DURATION, timedelta(minutes=3, seconds=30), "PT3M30S"),
        (FieldType.LONG, 500000000000000, "500000000000000"),
        (FieldType.BOOLEAN, False, "false"),
        (FieldType.NUMERIC, Decimal("1E+3"), "1000"),
    ],
)
def test_lexical_forms(kind: FieldType, value: Value, lexical: str) -> None:
    spec = _spec(kind)
    built = build_fields(
        1, [NodeReadings(DEVICE01, [(spec, FieldValue(spec.name, value, LOCAL))])], done=True
    )
    [elem] = built.iter(f"{{{NS_SENSORDATA}}}{kind.value}")
    assert elem.get("value") == lexical


def test_value_of_the_wrong_type_is_a_programming_error() -> None:
    spec = _spec(FieldType.INT)
    with pytest.raises(TypeError, match="bool"):
        build_fields(
            1, [NodeReadings(DEVICE01, [(spec, FieldValue(spec.name, True, LOCAL))])], done=True
        )
