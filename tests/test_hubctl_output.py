"""hubctl's printing: JSON typed and exact, human lines aligned with units and ages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from hubd.service import hubctl_output as output
from hubd.xmpp.client_xml import BrowsedNode, DataSource
from hubd.xmpp.sensordata_xml import NodeRef, ParsedField, parse_fields

SD = "urn:xmpp:iot:sensordata"
NOW = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)
KEYS = ["device", "field", "value", "type", "unit", "time"]


def fields(
    body: str, stamp: str = "2026-12-03T08:58:00Z"
) -> list[tuple[NodeRef, list[ParsedField]]]:
    element: Element = fromstring(
        f"<fields xmlns='{SD}' seqnr='1' done='true'><node nodeId='weather'>"
        f"<timestamp value='{stamp}'>{body}</timestamp></node></fields>"
    )
    return parse_fields(element)


def one(body: str, stamp: str = "2026-12-03T08:58:00Z") -> ParsedField:
    [(_, [field])] = fields(body, stamp)
    return field


@pytest.mark.parametrize(
    ("body", "value", "kind", "unit"),
    [
        ("<numeric name='t' value='20.50' unit='°C'/>", 20.5, "numeric", "°C"),
        ("<numeric name='t' value='-3' unit=''/>", -3, "numeric", None),
        ("<boolean name='state' value='1'/>", True, "boolean", None),
        ("<boolean name='state' value='false'/>", False, "boolean", None),
        ("<int name='count' value='42'/>", 42, "int", None),
        ("<long name='energy' value='500000000000000'/>", 500000000000000, "long", None),
        ("<string name='text' value='hello \"world\"'/>", 'hello "world"', "string", None),
        ("<enum name='mode' value='eco' dataType='mode'/>", "eco", "enum", None),
        ("<duration name='up' value='PT5M'/>", "PT5M", "duration", None),
        ("<timeSpan name='up' value='PT30S'/>", "PT30S", "duration", None),
        ("<date name='d' value='2026-01-31'/>", "2026-01-31", "date", None),
        (
            "<dateTime name='seen' value='2026-12-03T10:00:00+01:00'/>",
            "2026-12-03T09:00:00Z",
            "dateTime",
            None,
        ),
    ],
)
def test_json_values_are_typed(body: str, value: object, kind: str, unit: str | None) -> None:
    line = output.json_line("weather", one(body))
    data = json.loads(line)
    assert list(data) == KEYS
    assert data["value"] == value
    assert type(data["value"]) is type(value)
    assert (data["device"], data["type"], data["unit"]) == ("weather", kind, unit)
    assert data["time"] == "2026-12-03T08:58:00Z"


def test_json_numbers_keep_their_decimals_and_stay_numbers() -> None:
    line = output.json_line("weather", one("<numeric name='t' value='20.50' unit='°C'/>"))
    assert '"value": 20.50,' in line
    assert "\\u00b0C" in line  # ASCII only, whatever the locale of a cron job
    # xs:decimal allows forms JSON does not: written as plain decimals then.
    assert (
        json.loads(output.json_line("w", one("<numeric name='t' value='+5' unit=''/>")))["value"]
        == 5
    )
    assert '"value": 0.5' in output.json_line("w", one("<numeric name='t' value='.5' unit=''/>"))


def test_json_time_is_utc_and_zoneless_times_are_local() -> None:
    aware = one("<boolean name='b' value='true'/>", "2026-12-03T10:00:00+01:00")
    assert json.loads(output.json_line("d", aware))["time"] == "2026-12-03T09:00:00Z"
    naive = one("<boolean name='b' value='true'/>", "2026-12-03T10:00:00")
    expected = datetime(2026, 12, 3, 10, 0, 0).astimezone(UTC)
    assert json.loads(output.json_line("d", naive))["time"] == expected.strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_human_values_as_chat_words_them() -> None:
    assert output.value_text(one("<boolean name='s' value='true'/>")) == "on"
    assert output.value_text(one("<numeric name='t' value='20.50' unit='°C'/>")) == "20.50 °C"
    assert output.value_text(one("<numeric name='h' value='45' unit='%'/>")) == "45%"
    assert output.value_text(one("<duration name='u' value='PT90M'/>")) == "1 h 30 min"


def test_read_lines_are_aligned_with_ages() -> None:
    readings = fields(
        "<numeric name='temperature' value='20.5' unit='°C'/>"
        "<numeric name='humidity' value='45' unit='%'/>"
    )
    lines = output.reading_lines(readings, NOW, as_json=False)
    assert lines == [
        "weather  temperature  20.5 °C  2 min ago",
        "weather  humidity     45%      2 min ago",
    ]
    assert [json.loads(line)["field"] for line in output.reading_lines(readings, NOW, True)] == [
        "temperature",
        "humidity",
    ]


def test_aligned_pads_all_but_the_last_column() -> None:
    assert output.aligned([["a", "bb", "c"], ["ccc", "d"]]) == ["a    bb  c", "ccc  d"]
    assert output.aligned([["a", "a long last cell"], ["bb", "c", "d"]]) == [
        "a   a long last cell",
        "bb  c  d",
    ]
    assert output.aligned([]) == []


def test_list_names_devices_and_says_why_some_have_no_values() -> None:
    nodes = [
        BrowsedNode("weather", "Weather", "serial.lines", "None", False, True, False, None),
        BrowsedNode("porch", "porch", "gpio.output", "None", False, True, True, None),
        BrowsedNode("door", "door", "gpio.input", "ErrorUnsigned", False, True, False, None),
    ]
    readings = fields(
        "<numeric name='temperature' value='20.5' unit='°C'/><boolean name='online' value='true'/>"
    )
    lines = output.list_lines(nodes, readings, {"porch": "Timeout."}, NOW, as_json=False)
    assert lines == [
        "weather (Weather)  temperature  20.5 °C  2 min ago",
        "porch              (failed: Timeout.)",
        "door               (ErrorUnsigned)",
    ]
    # Without the tree (not a concentrator), the devices read are listed by id.
    assert output.list_lines(None, readings, {}, NOW, as_json=False)[0].startswith("weather  ")


def test_events_one_line_per_timestamp_and_counted_so() -> None:
    element: Element = fromstring(
        f"<fields xmlns='{SD}' seqnr='1' done='true'><node nodeId='door'>"
        "<timestamp value='2026-12-03T08:00:00Z'><boolean name='state' value='true'/>"
        "<int name='count' value='3'/></timestamp>"
        "<timestamp value='2026-12-03T08:00:01Z'><boolean name='state' value='false'/></timestamp>"
        "</node></fields>"
    )
    readings = parse_fields(element)
    assert output.event_count(readings) == 2
    lines = output.event_lines(readings, as_json=False)
    assert [line.split("  ", 1)[1] for line in lines] == [
        "door  state on, count 3",
        "door  state off",
    ]
    assert len(output.event_lines(readings, as_json=True)) == 3  # one object per value


def test_history_oldest_first() -> None:
    element: Element = fromstring(
        f"<fields xmlns='{SD}' seqnr='1' done='true'><node nodeId='w'>"
        "<timestamp value='2026-12-03T08:00:01Z'>"
        "<int name='n' value='2' historicalOther='true'/></timestamp>"
        "<timestamp value='2026-12-03T08:00:00Z'>"
        "<int name='n' value='1' historicalOther='true'/></timestamp>"
        "</node></fields>"
    )
    readings = parse_fields(element)
    assert [json.loads(x)["value"] for x in output.history_lines(readings, as_json=True)] == [1, 2]
    human = output.history_lines(readings, as_json=False)
    local = (NOW - timedelta(hours=1)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert human[0] == f"{local}  w  n  1"


def test_browse_tree_and_json() -> None:
    root = DataSource("MeteringTopology", "All devices", True)
    child = DataSource("gpio", "gpio", False)
    lamp = BrowsedNode("lamp", "Lamp", "gpio.output", "None", False, True, True, None)
    tree = [(0, root, [lamp]), (1, child, [lamp])]
    assert output.browse_lines(tree, as_json=False) == [
        "MeteringTopology  (All devices)",
        "  lamp  Lamp  gpio.output  readable, controllable",
        "  gpio",
        "    lamp  Lamp  gpio.output  readable, controllable",
    ]
    first = json.loads(output.browse_lines(tree, as_json=True)[0])
    assert first == {
        "source": "MeteringTopology",
        "device": "lamp",
        "name": "Lamp",
        "type": "gpio.output",
        "state": "None",
        "readable": True,
        "controllable": True,
        "parent": None,
    }
