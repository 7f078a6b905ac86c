"""gpio.input on mock pins: edges, debouncing, the counter, the thread handover."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from gpio_fakes import FakeClock
from pydantic import ValidationError

from drivers.gpio.input import InputConfig, InputDriver
from hubd.core.config import load_config
from hubd.core.model import FieldValue
from hubd.core.resources import SharedResources
from hubd.errors import ConfigError
from hubd.testing.drivers import Recorder, make_context

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class StepTime:
    """A UTC clock that moves one second per call, so every stamp is distinct."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return T0 + timedelta(seconds=self.calls)


async def make_input(
    resources: SharedResources, clock: FakeClock | None = None, **options: Any
) -> tuple[InputDriver, Recorder]:
    ctx, rec = make_context(node_id="door", resources=resources)
    ctx = dataclasses.replace(ctx, now=StepTime())
    config = InputConfig(id="door", driver="gpio.input", **{"pin": 27, **options})
    driver = InputDriver(config, ctx, clock=clock or FakeClock())
    await driver.start()
    return driver, rec


def states(values: Sequence[FieldValue]) -> list[object]:
    return [v.value for v in values if v.name == "state"]


async def test_pull_up_input_is_active_low_and_pushes_both_edges(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_input(resources, pull_up=True)
    pin = factory.pin(27)
    assert pin.pull == "up"
    pin.drive_low()
    pin.drive_high()
    values = await rec.wait_for(3)
    assert states(values) == [False, True, False]
    assert [v.name for v in values] == ["state"] * 3, "no counter fields unless asked"
    await driver.stop()


async def test_floating_input_with_external_pull_down_is_active_high(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_input(resources, pull_up=None, active_state=True)
    pin = factory.pin(27)
    assert pin.pull == "floating"
    pin.drive_high()
    assert states(await rec.wait_for(2)) == [False, True]
    await driver.stop()


async def test_edges_carry_the_time_they_happened(resources: SharedResources, factory: Any) -> None:
    driver, rec = await make_input(resources, pull_up=False)
    factory.pin(27).drive_high()
    initial, edge = await rec.wait_for(2)
    assert initial.timestamp == T0 + timedelta(seconds=1)
    assert edge.timestamp == T0 + timedelta(seconds=2), "stamped on the edge's thread"
    await driver.stop()


async def test_counter_and_last_change(resources: SharedResources, factory: Any) -> None:
    driver, rec = await make_input(resources, pull_up=True, count_edges=True)
    assert [f.name for f in driver.describe().fields] == ["state", "count", "last_change"]
    initial = await rec.wait_for(2)
    assert [(v.name, v.value) for v in initial] == [("state", False), ("count", 0)]
    pin = factory.pin(27)
    for _ in range(3):
        pin.drive_low()  # active: counted
        pin.drive_high()  # inactive: not counted
    values = await rec.wait_for(2 + 6 * 3)
    events = [values[i : i + 3] for i in range(2, len(values), 3)]
    assert [[v.name for v in e] for e in events] == [["state", "count", "last_change"]] * 6
    assert [e[0].value for e in events] == [True, False] * 3
    assert [e[1].value for e in events] == [1, 1, 2, 2, 3, 3]
    for event in events:
        assert event[2].value == event[0].timestamp, "last_change is the edge's time"
    read = {v.name: v.value for v in await driver.read(frozenset())}
    assert read["state"] is False
    assert read["count"] == 3
    assert read["last_change"] == events[-1][0].timestamp
    await driver.stop()


async def test_counter_survives_a_node_restart(resources: SharedResources, factory: Any) -> None:
    driver, rec = await make_input(resources, pull_up=True, count_edges=True)
    factory.pin(27).drive_low()
    await rec.wait_for(5)
    await driver.stop()
    await driver.start()
    values = await rec.wait_for(8)
    assert {v.name: v.value for v in values[-3:]}["count"] == 1
    await driver.stop()


async def test_bounce_drops_edges_inside_the_window(
    resources: SharedResources, factory: Any, clock: FakeClock
) -> None:
    driver, rec = await make_input(resources, clock, pull_up=True, bounce_time=0.05)
    pin = factory.pin(27)
    clock.now = 1000.000
    pin.drive_low()  # accepted: active
    clock.now = 1000.010
    pin.drive_high()  # chatter
    clock.now = 1000.020
    pin.drive_low()  # chatter; the pin is back where the accepted edge left it
    clock.now = 1000.100
    pin.drive_high()  # a real release, after the window
    values = await rec.wait_for(3)
    assert states(values) == [False, True, False]
    await driver.stop()


async def test_a_change_hidden_in_the_bounce_window_is_published_when_it_ends(
    resources: SharedResources, factory: Any, clock: FakeClock
) -> None:
    driver, rec = await make_input(
        resources, clock, pull_up=True, bounce_time=0.05, count_edges=True
    )
    pin = factory.pin(27)
    clock.now = 1000.000
    pin.drive_low()
    clock.now = 1000.010
    pin.drive_high()  # dropped now, but the pin stays released
    values = await rec.wait_for(2 + 3 + 3)  # the settle timer runs at most 0.04 s later
    assert states(values) == [False, True, False]
    last = {v.name: v.value for v in values[-3:]}
    assert last["count"] == 1
    assert last["last_change"] == values[-3].timestamp
    await driver.stop()


async def test_edges_from_gpiozero_threads_are_published_on_the_loop(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_input(resources, pull_up=True, count_edges=True)
    loop_thread = threading.get_ident()
    publishers: list[int] = []
    publish = driver.ctx.publish

    def spy(values: Sequence[FieldValue]) -> None:
        publishers.append(threading.get_ident())
        publish(values)

    driver.ctx = dataclasses.replace(driver.ctx, publish=spy)
    pin = factory.pin(27)

    def press_many() -> None:
        for _ in range(50):
            pin.drive_low()
            pin.drive_high()

    worker = threading.Thread(target=press_many)
    worker.start()
    worker.join()
    values = await rec.wait_for(2 + 100 * 3)
    assert set(publishers) == {loop_thread}
    counts = [v.value for v in values if v.name == "count"]
    assert counts[-1] == 50
    assert states(values)[1:] == [True, False] * 50, "order kept across the handover"
    await driver.stop()


async def test_read_takes_a_change_the_library_has_not_reported_yet(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_input(resources, pull_up=True)
    pin = factory.pin(27)
    pin.drive_low()  # its callback is queued, not run yet
    [value] = await driver.read(frozenset())
    assert value.value is True
    pin.drive_high()
    values = await rec.wait_for(3)
    assert states(values) == [False, True, False], "the queued edge was not published twice"
    await driver.stop()


async def test_stop_cancels_a_pending_settle_and_ignores_late_edges(
    resources: SharedResources, factory: Any, clock: FakeClock
) -> None:
    driver, rec = await make_input(resources, clock, pull_up=True, bounce_time=5)
    pin = factory.pin(27)
    pin.drive_low()
    await rec.wait_for(2)
    pin.drive_high()  # dropped: schedules a settle check 5 s away
    await driver.stop()
    await driver.stop()  # idempotent
    assert driver._settle is None
    assert pin.when_changed is None, "callbacks detached from the closed pin"
    assert states(rec.values) == [False, True]


def test_config_needs_active_state_exactly_with_a_floating_pin() -> None:
    with pytest.raises(ValidationError, match="active_state: required when pull_up is null"):
        InputConfig(id="a", driver="gpio.input", pin=4, pull_up=None)
    with pytest.raises(ValidationError, match="active_state: only with pull_up: null"):
        InputConfig(id="a", driver="gpio.input", pin=4, pull_up=True, active_state=True)


def test_config_error_in_the_file_names_the_device(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        "devices:\n"
        "  - id: door\n    driver: gpio.input\n    pin: 27\n    pull_up: null\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [problem] = [str(p) for p in info.value.problems]
    assert "devices[0] (door)" in problem
    assert "active_state: required when pull_up is null" in problem
