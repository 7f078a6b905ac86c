"""The hub and the node supervisor, with a fake driver."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

import pytest

from hubd.core.backoff import Backoff
from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType, FieldValue, NodeSpec, NodeState, Value
from hubd.core.node import Node
from hubd.core.supervisor import NodeSupervisor
from hubd.errors import (
    ControlNotSupported,
    DriverUnavailable,
    InvalidValue,
    NodeNotFound,
    ReadoutError,
    UnknownParameter,
)
from hubd.testing.drivers import make_context

LEVEL = FieldSpec(
    name="level", type=FieldType.NUMERIC, writable=True, minimum=Decimal(0), maximum=Decimal(1)
)
TEMP = FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C")


class FakeDriver(Driver[DriverConfig]):
    """A driver whose behaviour each test sets."""

    kind = "fake.thing"
    config_model = DriverConfig

    def __init__(self, config: DriverConfig, ctx: object) -> None:
        super().__init__(config, ctx)  # type: ignore[arg-type]
        self.start_failures = 0
        self.started = 0
        self.stopped = 0
        self.written: list[tuple[str, Value]] = []
        self.hang = False
        self.start_event = asyncio.Event()

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=(LEVEL, TEMP))

    async def start(self) -> None:
        self.started += 1
        self.start_event.set()
        if self.start_failures:
            self.start_failures -= 1
            raise DriverUnavailable("not plugged in")

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        if self.hang:
            await asyncio.Event().wait()
        return [self.ctx.value("temperature", Decimal("21.5"))]

    async def write(self, field: str, value: Value) -> None:
        self.written.append((field, value))

    async def stop(self) -> None:
        self.stopped += 1


class Recorder:
    def __init__(self) -> None:
        self.values: list[tuple[str, FieldValue]] = []
        self.states: list[tuple[str, NodeState]] = []

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        self.values.extend((node.id, v) for v in values)

    def on_state(self, node: Node) -> None:
        self.states.append((node.id, node.state))


async def make_hub() -> tuple[Hub, Node, FakeDriver, Recorder]:
    ctx, _ = make_context("thing")
    driver = FakeDriver(DriverConfig(id="thing", driver="fake.thing"), ctx)
    node = Node.create(driver.config, driver)
    hub = Hub([node])
    recorder = Recorder()
    hub.add_listener(recorder)
    return hub, node, driver, recorder


async def test_read_caches_and_notifies_and_adds_online() -> None:
    hub, node, _, rec = await make_hub()
    hub.set_state("thing", NodeState.ONLINE)
    values = await hub.read("thing")
    assert [(v.name, v.value) for v in values] == [
        ("temperature", Decimal("21.5")),
        ("online", True),
    ]
    assert node.cache["temperature"].value == Decimal("21.5")
    assert ("thing", NodeState.ONLINE) in rec.states


async def test_read_of_offline_or_unknown_or_hanging_node() -> None:
    hub, _, driver, _ = await make_hub()
    with pytest.raises(DriverUnavailable):
        await hub.read("thing")
    with pytest.raises(NodeNotFound):
        await hub.read("nope")
    hub.set_state("thing", NodeState.ONLINE)
    driver.hang = True
    driver.read_timeout = 0.05
    with pytest.raises(ReadoutError, match="no answer"):
        await hub.read("thing")


async def test_write_validates_before_the_driver_sees_anything() -> None:
    hub, _, driver, _ = await make_hub()
    hub.set_state("thing", NodeState.ONLINE)
    with pytest.raises(InvalidValue, match="above the maximum"):
        await hub.write("thing", "level", "1.5", actor="alice@example.org")
    with pytest.raises(UnknownParameter):
        await hub.write("thing", "colour", "red", actor="alice@example.org")
    with pytest.raises(ControlNotSupported):
        await hub.write("thing", "temperature", "3", actor="alice@example.org")
    assert driver.written == []
    assert await hub.write("thing", "level", "0.25", actor="alice@example.org") == Decimal("0.25")
    assert driver.written == [("level", Decimal("0.25"))]


async def test_write_is_audited(caplog: pytest.LogCaptureFixture) -> None:
    hub, _, _, _ = await make_hub()
    hub.set_state("thing", NodeState.ONLINE)
    caplog.set_level("INFO", logger="hubd.audit")
    await hub.write("thing", "level", "1", actor="alice@example.org")
    with pytest.raises(InvalidValue):
        await hub.write("thing", "level", "x", actor="bob@example.org")
    lines = [r.getMessage() for r in caplog.records if r.name == "hubd.audit"]
    assert lines[0] == "control by alice@example.org: thing.level = 1 done"
    assert lines[1].startswith("control by bob@example.org: thing.level = 'x' refused")


async def test_undeclared_fields_are_dropped() -> None:
    hub, node, _, rec = await make_hub()
    hub.ingest("thing", [FieldValue("bogus", 1, node.last_changed)])
    assert "bogus" not in node.cache
    assert rec.values == []


async def test_state_change_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    hub, _, _, _ = await make_hub()
    caplog.set_level("INFO", logger="hubd.core.hub")
    for _ in range(3):
        hub.set_state("thing", NodeState.OFFLINE, "unplugged")
    assert len([r for r in caplog.records if "unplugged" in r.getMessage()]) == 1


async def test_supervisor_retries_with_backoff_then_restarts_on_loss() -> None:
    hub, node, driver, rec = await make_hub()
    driver.start_failures = 2
    supervisor = NodeSupervisor(hub, node, Backoff(base=0.001, cap=0.002))
    task = asyncio.create_task(supervisor.run())
    try:
        async with asyncio.timeout(5):
            while driver.started < 3:
                driver.start_event.clear()
                await driver.start_event.wait()
        await asyncio.sleep(0)  # let the supervisor record the successful start
        assert node.state is NodeState.ONLINE
        assert driver.started == 3
        assert [s for _, s in rec.states][:1] == [NodeState.OFFLINE]
        supervisor.report_available(False, "cable pulled")
        async with asyncio.timeout(5):
            driver.start_event.clear()
            await driver.start_event.wait()
        assert driver.started == 4
        assert ("thing", NodeState.OFFLINE) in rec.states
        assert node.state_message in (None, "cable pulled")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert driver.stopped >= 3


def test_backoff_grows_with_jitter_and_caps() -> None:
    import random

    backoff = Backoff(base=1, cap=8, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(6)]
    assert all(0.5 <= d <= 1 for d in delays[:1])
    assert all(4 <= d <= 8 for d in delays[4:])
    backoff.reset()
    assert backoff.next_delay() <= 1


class LearningDriver(FakeDriver):
    dynamic_fields = True


async def test_dynamic_fields_are_learned_typed_and_bounded() -> None:
    from hubd.core import hub as hub_module
    from hubd.core.model import FieldType

    ctx, _ = make_context("lines")
    driver = LearningDriver(DriverConfig(id="lines", driver="fake.thing"), ctx)
    node = Node.create(driver.config, driver)
    hub = Hub([node])
    stamp = node.last_changed
    hub.ingest(
        "lines",
        [
            FieldValue("humidity", Decimal("40.5"), stamp),
            FieldValue("door", True, stamp),
            FieldValue("Bad Name", "x", stamp),
        ],
    )
    assert node.spec.get("humidity").type is FieldType.NUMERIC  # type: ignore[union-attr]
    assert node.spec.get("door").type is FieldType.BOOLEAN  # type: ignore[union-attr]
    assert node.spec.get("Bad Name") is None
    assert node.cache["humidity"].value == Decimal("40.5")
    flood = [FieldValue(f"f{i}", i, stamp) for i in range(200)]
    hub.ingest("lines", flood)
    assert len(node.spec.fields) == hub_module.MAX_DYNAMIC_FIELDS
