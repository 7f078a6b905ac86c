"""A remote hub's nodes as nodes of this hub's event engine (hubd.core.remote_nodes)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from test_subscriptions import FakeSink

from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType, FieldValue
from hubd.core.node import Node
from hubd.core.remote_nodes import RemoteNodeProxy, RemoteNodeTable, chain_nodes
from hubd.core.settings import EventsSettings
from hubd.events.engine import EventEngine
from hubd.events.store import Store
from hubd.events.subscriptions import FieldRule, SubscriptionSpec

TEMPERATURE = FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C")
STAMP = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def reading(text: str) -> tuple[FieldSpec, FieldValue]:
    return TEMPERATURE, FieldValue("temperature", Decimal(text), STAMP)


def test_proxies_are_made_for_configured_remotes_only() -> None:
    table = RemoteNodeTable(["garage"])
    assert "garage/door" in table
    assert "shed/door" not in table
    assert "garage/" not in table
    assert "door" not in table
    assert len(table) == 0  # nothing made by asking
    proxy = table["garage/door"]
    assert isinstance(proxy, RemoteNodeProxy)
    assert (proxy.id, proxy.source, proxy.remote_id) == ("garage/door", "garage", "door")
    assert [s.name for s in proxy.spec.fields] == ["online"]
    assert list(table) == ["garage/door"]
    assert table["garage/door"] is proxy
    with pytest.raises(KeyError):
        table["shed/door"]


def test_ingest_learns_fields_caches_and_tells_the_listeners() -> None:
    table = RemoteNodeTable(["garage"])
    heard: list[tuple[Node, list[FieldValue]]] = []
    table.listeners.append(lambda node, values: heard.append((node, list(values))))
    table.ingest("garage", "weather", [reading("21.5")])
    proxy = table["garage/weather"]
    assert proxy.spec.get("temperature") == TEMPERATURE
    assert proxy.cache["temperature"].value == Decimal("21.5")
    assert [(n.id, [v.value for v in vs]) for n, vs in heard] == [
        ("garage/weather", [Decimal("21.5")])
    ]
    table.ingest("garage", "weather", [reading("21.0"), reading("22.0")])  # one name twice
    assert [s.name for s in proxy.spec.fields] == ["online", "temperature"]
    heard.clear()
    table.ingest("shed", "weather", [reading("1")])  # not a remote of this hub: nothing
    table.ingest("garage", "weather", [])
    assert heard == []


def test_chain_nodes_reads_this_hubs_nodes_first() -> None:
    local: dict[str, Node] = {}
    assert chain_nodes(local, None) is local
    table = RemoteNodeTable(["garage"])
    nodes = chain_nodes(local, table)
    assert "garage/door" in nodes
    assert nodes.get("garage/door") is table["garage/door"]
    assert nodes.get("porch") is None


async def test_a_remote_nodes_values_become_events_of_the_engine(tmp_path: Path) -> None:
    table = RemoteNodeTable(["garage"])
    hub = Hub([])
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    engine = EventEngine(hub, store, EventsSettings(), remote_nodes=table)
    table.listeners.append(engine.on_values)
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    try:
        await engine.subscribe(
            SubscriptionSpec(
                subscriber="a@x",
                target="a@x/r",
                node_id="garage/weather",
                seqnr=5,
                rules=(FieldRule("temperature", changed_up=Decimal(1), changed_down=Decimal(1)),),
            )
        )
        for text in ("20.0", "20.5", "21.5"):  # the rules apply here, not at the remote
            table.ingest("garage", "weather", [reading(text)])
        await sink.wait(2)
        assert [(e.node_id, e.seqnr, e.values[0].value) for _, e in sink.sent] == [
            ("garage/weather", 5, Decimal("20.0")),
            ("garage/weather", 5, Decimal("21.5")),
        ]
        assert sink.sent[0][1].created == STAMP  # the remote's reading time: delay stamps hold
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()


async def test_a_subscription_on_a_remote_node_is_kept_across_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    engine = EventEngine(Hub([]), store, remote_nodes=RemoteNodeTable(["garage"]))
    await engine.subscribe(
        SubscriptionSpec(subscriber="a@x", target="a@x/r", node_id="garage/door", seqnr=1)
    )
    await store.close()
    again = Store(tmp_path / "hubd.sqlite")
    await again.open()
    try:
        # The remote is not reached yet at start: the subscription stays.
        restored = EventEngine(Hub([]), again, remote_nodes=RemoteNodeTable(["garage"]))
        await restored.load()
        assert [s.spec.node_id for s in restored.subscriptions_of("a@x")] == ["garage/door"]
        # A remote no longer configured: its subscriptions go, as for a removed device.
        gone = EventEngine(Hub([]), again, remote_nodes=RemoteNodeTable([]))
        await gone.load()
        assert gone.subscriptions_of("a@x") == []
    finally:
        await again.close()
