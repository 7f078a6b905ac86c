"""A subscription naming no node covers the remotes' nodes the asker may read."""

from __future__ import annotations

from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteNode, RemoteSources

GARAGE = RemoteSettings(id="garage", jid="garage-hub@example.org/hubd")
SHED = RemoteSettings(id="shed", jid="shed-hub@example.org/hubd")


def _sources() -> RemoteSources:
    sources = RemoteSources([GARAGE, SHED])
    garage, shed = sources.get("garage"), sources.get("shed")
    assert garage is not None
    assert shed is not None
    garage.replace_nodes(
        [
            RemoteNode("door", "Garage door", "gpio.input"),
            RemoteNode("secret", "Not for us", "gpio.input", readable=False),
        ]
    )
    shed.replace_nodes([RemoteNode("soil", "Soil", "serial.lines")])
    return sources


def test_every_readable_remote_node_in_config_order() -> None:
    assert _sources().readable_keys(lambda key: True) == ["garage/door", "shed/soil"]


def test_the_askers_grants_narrow_them() -> None:
    only_garage = _sources().readable_keys(lambda key: key.startswith("garage/"))
    assert only_garage == ["garage/door"]
    assert _sources().readable_keys(lambda key: False) == []


def test_a_remote_not_reached_yet_adds_nothing() -> None:
    assert RemoteSources([GARAGE]).readable_keys(lambda key: True) == []
