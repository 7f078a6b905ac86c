"""gpio.input and gpio.output on gpiozero's MockFactory."""

from __future__ import annotations

import threading

import pytest

from drivers.gpio.input import InputConfig, InputDriver
from drivers.gpio.output import OutputConfig, OutputDriver
from drivers.gpio.pins import RESOURCE_KEY, make_pin_factory
from hubd.core.resources import SharedResources
from hubd.errors import DriverUnavailable
from hubd.testing.drivers import make_context


async def test_output_switches_the_pin_and_publishes_state() -> None:
    resources = SharedResources()
    ctx, rec = make_context(resources=resources)
    config = OutputConfig(id="relay", driver="gpio.output", pin=17, active_high=False)
    driver = OutputDriver(config, ctx)
    await driver.start()
    pin = resources.get_or_create(RESOURCE_KEY, lambda: None).pin(17)
    assert rec.latest("state").value is False  # type: ignore[union-attr]
    assert pin.state == 1  # active low: off is high
    await driver.write("state", True)
    assert pin.state == 0
    assert rec.latest("state").value is True  # type: ignore[union-attr]
    [value] = await driver.read(frozenset())
    assert value.value is True
    await driver.stop()
    await driver.stop()  # idempotent
    await resources.close_all()


async def test_input_pushes_edges_from_another_thread() -> None:
    resources = SharedResources()
    ctx, rec = make_context(resources=resources)
    config = InputConfig(id="door", driver="gpio.input", pin=27, pull_up=True)
    driver = InputDriver(config, ctx)
    await driver.start()
    pin = resources.get_or_create(RESOURCE_KEY, lambda: None).pin(27)
    await rec.wait_for(1)
    assert rec.values[0].value is False
    # gpiozero delivers edges on its own threads: drive the pin from one.
    worker = threading.Thread(target=lambda: (pin.drive_low(), pin.drive_high()))
    worker.start()
    worker.join()
    values = await rec.wait_for(3)
    assert [v.value for v in values] == [False, True, False]
    await driver.stop()
    await resources.close_all()


async def test_pin_in_use_is_reported_as_unavailable() -> None:
    resources = SharedResources()
    ctx, _ = make_context(resources=resources)
    first = OutputDriver(OutputConfig(id="a", driver="gpio.output", pin=5), ctx)
    second = InputDriver(InputConfig(id="b", driver="gpio.input", pin=5), ctx)
    await first.start()
    with pytest.raises(DriverUnavailable, match="GPIO5 cannot be opened"):
        await second.start()
    await second.stop()
    await first.stop()
    await resources.close_all()


def test_missing_pin_factory_library_is_a_clear_error() -> None:
    with pytest.raises(DriverUnavailable, match="pin factory 'pigpio'"):
        make_pin_factory("pigpio")
