"""hubctl's device names: ``door`` on the hub itself, ``garage/door`` on a remote hub."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from defusedxml.ElementTree import fromstring

from hubd.core.model import FieldType
from hubd.errors import UsageError
from hubd.service import hubctl_output as output
from hubd.service.hubctl import parse
from hubd.service.hubctl_names import DeviceName, Namer, own_sources, parse_device
from hubd.xmpp.client_xml import (
    BrowsedNode,
    DataSource,
    build_req,
    build_set,
    build_subscribe,
    parse_failure,
)
from hubd.xmpp.sensordata_xml import NodeRef, ParsedField

SD = "urn:xmpp:iot:sensordata"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_a_name_without_slash_is_a_device_of_the_hub() -> None:
    name = parse_device("porch-light")
    assert name == DeviceName("porch-light")
    assert name.ref == NodeRef("porch-light")
    assert str(name) == "porch-light"


def test_a_remote_device_is_source_slash_node() -> None:
    name = parse_device("garage/door")
    assert name == DeviceName("door", "garage")
    assert name.ref == NodeRef("door", "garage")
    assert str(name) == "garage/door"


def test_the_root_source_names_the_hubs_own_devices() -> None:
    assert parse_device("MeteringTopology/door") == DeviceName("door")


@pytest.mark.parametrize(
    "text",
    ["", "/door", "garage/", "/", "garage//door", "garage/shed/door", " door", "door ", "a b"],
)
def test_bad_names_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="not a device name"):
        parse_device(text)


def test_a_chain_of_remotes_says_why() -> None:
    with pytest.raises(UsageError, match="remote's own remotes"):
        parse_device("garage/shed/door")


def test_the_command_line_refuses_bad_names_before_connecting() -> None:
    args = parse(["read", "hub@example.org", "garage/door", "state"])
    assert (args.device, args.fields) == ("garage/door", ["state"])
    assert parse(["read", "hub@example.org"]).device is None
    for command in (["read"], ["set"], ["watch"], ["history"]):
        with pytest.raises(UsageError, match="not a device name"):
            parse(
                [
                    *command,
                    "hub@example.org",
                    "garage/",
                    *(["s", "on"] if command == ["set"] else []),
                ]
            )


def test_matching_answers() -> None:
    remote = DeviceName("door", "garage")
    assert remote.matches(NodeRef("door", "garage"))
    assert not remote.matches(NodeRef("door", "gpio"))  # the hub's own door, not the garage's
    assert not remote.matches(NodeRef("door"))
    own = DeviceName("door")
    assert own.matches(NodeRef("door", "gpio"))  # the hub's own come back under their bus
    assert not own.matches(NodeRef("light", "gpio"))


def _node(node_id: str, node_type: str) -> BrowsedNode:
    return BrowsedNode(node_id, node_id, node_type, "None", False, True, False, None)


def test_answers_are_named_by_the_hubs_own_sources() -> None:
    own = own_sources([_node("porch-light", "gpio.output"), _node("weather", "serial.lines")])
    assert own == {"MeteringTopology", "gpio", "serial"}
    name = Namer(own)
    assert name(NodeRef("porch-light", "gpio")) == "porch-light"
    assert name(NodeRef("porch-light")) == "porch-light"
    assert name(NodeRef("porch-light", "garage")) == "garage/porch-light"
    # Not a concentrator: every node keeps its plain id.
    assert Namer(None)(NodeRef("door", "garage")) == "door"


def test_requests_carry_the_source_id() -> None:
    ref = NodeRef("door", "garage")
    req = build_req(1, nodes=[ref, "porch-light"])
    assert [n.attrib for n in req] == [
        {"nodeId": "door", "sourceId": "garage"},
        {"nodeId": "porch-light"},
    ]
    assert build_set(ref, "boolean", "state", "true")[0].attrib == {
        "nodeId": "door",
        "sourceId": "garage",
    }
    assert build_subscribe(2, ref)[0].attrib == {"nodeId": "door", "sourceId": "garage"}


def test_a_failure_keeps_its_source() -> None:
    failure = fromstring(
        f"<failure xmlns='{SD}' seqnr='1' done='true'>"
        "<error nodeId='door' sourceId='garage' timestamp='2026-12-03T09:00:00Z'>"
        "garage: the remote hub went offline</error></failure>"
    )
    [one] = parse_failure(failure)
    assert one.ref == NodeRef("door", "garage")
    assert one.text == "garage: the remote hub went offline"


def _value(name: str, value: bool) -> ParsedField:
    return ParsedField(
        name=name,
        type=FieldType.BOOLEAN,
        value=value,
        lexical="true" if value else "false",
        timestamp=NOW,
        categories=frozenset(),
        quality=frozenset(),
        unit=None,
    )


def test_list_groups_the_remotes_devices_under_their_source() -> None:
    own = [_node("porch-light", "gpio.output")]
    garage = DataSource("garage", "garage hub", False)
    remote = [
        BrowsedNode("door", "Garage door", "gpio.input", "None", False, True, False, None),
        _node("light", "gpio.output"),
    ]
    readings = [
        (NodeRef("porch-light", "gpio"), [_value("state", False)]),
        (NodeRef("door", "garage"), [_value("state", True)]),
    ]
    name = Namer(own_sources(own))
    lines = output.list_lines(
        own,
        readings,
        {"garage/light": "garage: no answer within 5 s"},
        NOW,
        as_json=False,
        name=name,
        remotes=[(garage, remote)],
    )
    assert lines == [
        "porch-light  state  off  just now",
        "garage  (garage hub)",
        "  garage/door (Garage door)  state  on  just now",
        "  garage/light               (failed: garage: no answer within 5 s)",
    ]
    machine = output.list_lines(
        own, readings, {}, NOW, as_json=True, name=name, remotes=[(garage, remote)]
    )
    devices = [json.loads(line)["device"] for line in machine]
    assert devices == ["porch-light", "garage/door"]
