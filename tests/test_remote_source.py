"""A remote hub as this hub sees it (hubd.core.remote_source): offline once, loops refused."""

from __future__ import annotations

import logging

import pytest

from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import LOOP, STATE_ERROR, RemoteNode, RemoteSource, RemoteSources

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
