"""Subscription conditions (IoT events draft §2.2), the store, and the event engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, NodeState
from hubd.core.node import Node
from hubd.core.settings import EventsSettings
from hubd.events.engine import EventEngine
from hubd.events.event import Event
from hubd.events.store import Store
from hubd.events.subscriptions import FieldRule, Subscription, SubscriptionSpec
from hubd.events.tables import HistoryRow
from hubd.testing.drivers import make_context

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEMP = FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C")
DOOR = FieldSpec(name="door", type=FieldType.BOOLEAN)
MODE = FieldSpec(name="mode", type=FieldType.STRING, categories=frozenset({Category.STATUS}))
SPECS = {s.name: s for s in (TEMP, DOOR, MODE)}


def value(name: str, raw: object, seconds: int = 0) -> FieldValue:
    return FieldValue(name, raw, T0 + timedelta(seconds=seconds))  # type: ignore[arg-type]


def subscription(*rules: FieldRule, **kwargs: object) -> Subscription:
    spec = SubscriptionSpec(
        subscriber="a@x",
        target="a@x/r",
        node_id="n",
        seqnr=1,
        rules=rules,
        **kwargs,  # type: ignore[arg-type]
    )
    sub = Subscription(spec)
    sub.seed([value("temperature", Decimal("20.0")), value("door", False), value("mode", "auto")])
    return sub


def fired(sub: Subscription, *values: FieldValue) -> list[object]:
    return [v.value for v in sub.triggered(values, SPECS)]


def test_changed_by_is_measured_against_the_last_reported_value() -> None:
    sub = subscription(FieldRule("temperature", Decimal("0.5"), Decimal("0.5")))
    assert fired(sub, value("temperature", Decimal("20.4"))) == []
    assert fired(sub, value("temperature", Decimal("20.5"))) == [Decimal("20.5")]
    sub.reported([value("temperature", Decimal("20.5"))], T0)
    assert fired(sub, value("temperature", Decimal("20.9"))) == []
    assert fired(sub, value("temperature", Decimal("19.9"))) == [Decimal("19.9")]
    # Only temperature is named: the other fields are not covered.
    assert fired(sub, value("door", True)) == []


def test_directional_thresholds() -> None:
    up = subscription(FieldRule("temperature", changed_up=Decimal(1)))
    assert fired(up, value("temperature", Decimal(18))) == []
    assert fired(up, value("temperature", Decimal(21))) == [Decimal(21)]
    down = subscription(FieldRule("temperature", changed_down=Decimal(1)))
    assert fired(down, value("temperature", Decimal(22))) == []
    assert fired(down, value("temperature", Decimal(19))) == [Decimal(19)]


def test_any_change_for_booleans_and_strings_and_current_value() -> None:
    sub = subscription()
    assert fired(sub, value("door", False), value("mode", "auto")) == []
    assert fired(sub, value("door", True), value("mode", "eco")) == [True, "eco"]
    seeded = subscription(FieldRule("temperature", Decimal(1), Decimal(1), current=Decimal(25)))
    assert fired(seeded, value("temperature", Decimal("24.5"))) == []
    assert fired(seeded, value("temperature", Decimal("23.9"))) == [Decimal("23.9")]


def test_category_filter() -> None:
    sub = subscription(categories=frozenset({Category.STATUS}))
    assert fired(sub, value("door", True), value("mode", "eco")) == ["eco"]


def test_min_interval_hold() -> None:
    sub = subscription(min_interval=timedelta(seconds=10))
    assert sub.hold_until(T0) is None
    sub.reported([value("door", True)], T0)
    assert sub.hold_until(T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=10)
    assert sub.hold_until(T0 + timedelta(seconds=11)) is None


def test_spec_and_state_survive_json() -> None:
    sub = subscription(
        FieldRule("temperature", Decimal("0.5"), None, Decimal(20)),
        max_interval=timedelta(minutes=5),
        categories=frozenset({Category.MOMENTARY}),
        req=True,
    )
    sub.reported([value("temperature", Decimal("20.75")), value("mode", "eco")], T0)
    again = Subscription(SubscriptionSpec.from_json(sub.spec.to_json()))
    again.load_state(sub.state_json())
    assert again.spec == sub.spec
    assert again.reference == sub.reference
    assert str(again.reference["temperature"]) == "20.75"
    assert again.last_sent == T0


async def test_store_outbox_is_bounded_and_survives_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "hubd.sqlite")
    await store.open()
    ids = await store.enqueue([("a@x", {"n": i}) for i in range(5)], limit=3)
    assert ids[:2] == [None, None], "the oldest two were dropped at once"
    assert [q.event["n"] for q in await store.pending("a@x")] == [2, 3, 4]
    assert await store.take_dropped("a@x") == 2
    assert await store.take_dropped("a@x") == 0
    delivered = ids[2]
    assert delivered is not None
    await store.delivered([delivered])
    await store.record([HistoryRow("n", "temperature", 100.0, {"v": "1"})])
    await store.close()
    again = Store(tmp_path / "state" / "hubd.sqlite")
    await again.open()
    assert [q.event["n"] for q in await again.pending()] == [3, 4]
    # The row keeps only the value; its name and time come back from its columns.
    assert [r.value for r in await again.history("n", ["temperature"], 0, 200, 10)] == [
        {"v": "1", "n": "temperature", "ts": "1970-01-01T00:01:40+00:00", "q": []}
    ]
    assert await again.prune_history(150.0) == 1
    await again.close()


class Thermometer(Driver[DriverConfig]):
    kind = "fake.thermometer"
    config_model = DriverConfig

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=(TEMP,))

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        return []


class FakeSink:
    def __init__(self) -> None:
        self.reachable = True
        self.sent: list[tuple[int, Event]] = []
        self.arrived = asyncio.Event()

    def can_deliver(self, subscriber: str) -> bool:
        return self.reachable

    def deliver(self, event_id: int, event: Event) -> None:
        self.sent.append((event_id, event))
        self.arrived.set()

    def end_batch(self) -> None:
        pass

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.sent) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def test_engine_holds_events_for_an_absent_subscriber_then_flushes(tmp_path: Path) -> None:
    ctx, _ = make_context("t")
    config = DriverConfig(id="t", driver="fake.thermometer")
    node = Node.create(config, Thermometer(config, ctx))
    hub = Hub([node])
    hub.set_state("t", NodeState.ONLINE)
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    engine = EventEngine(hub, store, EventsSettings(queue_limit=2))
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    try:
        await engine.subscribe(
            SubscriptionSpec(subscriber="a@x", target="a@x/r", node_id="t", seqnr=3)
        )
        hub.ingest("t", [value("temperature", Decimal("1.5"))])
        await sink.wait(1)
        first_id, first = sink.sent[0]
        assert (first.seqnr, first.values[0].value, first.delayed) == (3, Decimal("1.5"), False)
        engine.acked([first_id])
        sink.reachable = False
        for reading in ("2.5", "3.5", "4.5"):
            hub.ingest("t", [value("temperature", Decimal(reading))])
        engine.request_flush("a@x")  # nothing goes out while it is away
        await asyncio.sleep(0)
        sink.reachable = True
        engine.request_flush("a@x")
        await sink.wait(3)
        held = [e for _, e in sink.sent[1:]]
        assert [e.values[0].value for e in held] == [Decimal("3.5"), Decimal("4.5")]
        assert held[0].dropped == 1, "the oldest held event was dropped and counted"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()
