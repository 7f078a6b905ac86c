"""A remote hub as this hub sees it (hubd.core.remote_source): offline once, loops refused."""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

import pytest

from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import (
    LONG_LOOP,
    LOOP,
    STATE_ERROR,
    RemoteNode,
    RemoteSource,
    RemoteSources,
)
from hubd.errors import BadRequest
from hubd.xmpp.concentrator_remote import MAX_REACH, build_reach, parse_reach, parse_remote_nodes
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS

GARAGE = RemoteSettings(id="garage", jid="Garage-Hub@Example.org/hubd")
DOOR = RemoteNode("door", "Garage door", "gpio.input")


def test_offline_is_said_once_and_nodes_stay_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = RemoteSource(GARAGE)
    source.replace_nodes([DOOR])
    assert source.online
    with caplog.at_level(logging.INFO, logger="hubd.core.remote_source"):
        assert source.set_offline("no answer within 10 s")
        assert not source.set_offline("no answer within 10 s")  # not news
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    node = source.node("door")
    assert node is not None
    assert (node.state, node.message) == (STATE_ERROR, "garage: no answer within 10 s")
    source.replace_nodes([DOOR])
    assert source.online
    assert source.node("door") == DOOR


def test_a_loop_is_refused_for_good(caplog: pytest.LogCaptureFixture) -> None:
    source = RemoteSource(GARAGE)
    source.replace_nodes([DOOR])
    with caplog.at_level(logging.ERROR, logger="hubd.core.remote_source"):
        assert source.refuse_loop()
        assert not source.refuse_loop()
    assert len(caplog.records) == 1
    assert LOOP in caplog.records[0].getMessage()
    assert (source.online, source.reason, source.nodes()) == (False, LOOP, [])
    # A tree already on its way, or a later presence, does not bring a loop back.
    source.replace_nodes([DOOR])
    assert not source.set_offline("the remote hub went offline")
    assert (source.online, source.reason, source.nodes()) == (False, LOOP, [])


def test_remotes_are_found_by_full_and_by_bare_jid() -> None:
    sources = RemoteSources([GARAGE, RemoteSettings(id="shed", jid="shed@example.org/pi")])
    garage = sources.get("garage")
    assert garage is not None
    assert sources.by_jid("GARAGE-hub@example.ORG/hubd") is garage
    assert sources.by_jid("garage-hub@example.org/other") is None  # another resource
    assert sources.by_bare("garage-hub@example.org/other") is garage  # the same account
    assert sources.by_bare("garage-hub@example.org") is garage
    assert sources.by_bare("alice@example.org/phone") is None


def test_reach_is_the_remotes_and_what_they_reach_a_refused_loop_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shed = RemoteSettings(id="shed", jid="shed-hub@example.org/hubd")
    sources = RemoteSources([GARAGE, shed])
    garage = sources.get("garage")
    assert garage is not None
    garage.reach = frozenset({"far-hub@example.net"})
    assert sources.reach() == {
        "garage-hub@example.org",
        "shed-hub@example.org",
        "far-hub@example.net",
    }
    with caplog.at_level(logging.ERROR, logger="hubd.core.remote_source"):
        assert garage.refuse_loop(LONG_LOOP)
        assert not garage.refuse_loop(LONG_LOOP)  # said once
    assert len(caplog.records) == 1
    assert garage.reason == LONG_LOOP
    assert sources.reach() == {"shed-hub@example.org"}


def test_reach_travels_in_a_get_all_nodes_answer_and_bad_ones_are_refused() -> None:
    answer = Element(f"{{{NS_CONCENTRATORS}}}getAllNodesResponse", {"result": "OK"})
    assert parse_reach(answer) == frozenset()
    reach = build_reach(frozenset({"b@example.org", "a@example.net"}))
    assert reach is not None
    assert [hub.get("jid") for hub in reach] == ["a@example.net", "b@example.org"]
    answer.append(reach)
    assert parse_reach(answer) == {"a@example.net", "b@example.org"}
    assert parse_remote_nodes(answer) == []  # other parsers see no nodes in it
    assert build_reach(frozenset()) is None
    too_many = build_reach(frozenset(f"h{i}@example.org" for i in range(MAX_REACH + 1)))
    assert too_many is not None
    with pytest.raises(BadRequest, match="more than"):
        parse_reach(_response_with(too_many))


def _response_with(child: Element) -> Element:
    response = Element(f"{{{NS_CONCENTRATORS}}}getAllNodesResponse", {"result": "OK"})
    response.append(child)
    return response
