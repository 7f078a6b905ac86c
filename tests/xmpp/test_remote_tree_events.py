"""Tree events for a remote's data source (hubd.xmpp.remote_tree_events): what changed, as XML."""

from __future__ import annotations

from dataclasses import replace

from xmlcompare import assert_same_xml, parse

from hubd.core.remote_source import STATE_ERROR, RemoteNode
from hubd.xmpp.concentrator import TREE_EVENTS, TreeSubscription
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.remote_tree_events import remote_tree_element, tree_changes

DOOR = RemoteNode("door", "Garage door", "gpio.input")
LIGHT = RemoteNode("light", "Garage light", "gpio.output", controllable=True)
ALL = TreeSubscription("garage", frozenset(TREE_EVENTS), parameters=False, messages=True)


def test_each_difference_is_one_event() -> None:
    before = {"door": DOOR, "light": LIGHT}
    offline = replace(DOOR, state=STATE_ERROR, message="garage: the remote hub went offline")
    renamed = replace(LIGHT, name="Workshop light")
    fan = RemoteNode("fan", "Fan", "gpio.output")
    after = {"door": offline, "light": renamed, "fan": fan}
    assert tree_changes(before, after) == [
        ("nodeStatusChanged", offline),
        ("nodeUpdated", renamed),
        ("nodeAdded", fan),
    ]
    assert tree_changes(after, {"fan": fan}) == [("nodeRemoved", offline), ("nodeRemoved", renamed)]
    assert tree_changes(before, dict(before)) == []


def test_the_events_name_the_remotes_source() -> None:
    offline = replace(DOOR, state=STATE_ERROR, message="garage: no answer within 10 s")
    assert_same_xml(
        remote_tree_element("nodeStatusChanged", offline, "garage", ALL),
        parse(
            f"<nodeStatusChanged xmlns='{NS_CONCENTRATORS}' sourceId='garage' nodeId='door'"
            " state='ErrorUnsigned'><message type='Error'>garage: no answer within 10 s</message>"
            "</nodeStatusChanged>"
        ),
    )
    assert_same_xml(
        remote_tree_element("nodeAdded", LIGHT, "garage", ALL),
        parse(
            f"<nodeAdded xmlns='{NS_CONCENTRATORS}' nodeId='light' displayName='Garage light'"
            " nodeType='gpio.output' sourceId='garage' state='None' hasChildren='false'"
            " isReadable='true' isControllable='true' hasCommands='false'/>"
        ),
    )
    assert_same_xml(
        remote_tree_element("nodeRemoved", LIGHT, "garage", ALL),
        parse(f"<nodeRemoved xmlns='{NS_CONCENTRATORS}' sourceId='garage' nodeId='light'/>"),
    )
