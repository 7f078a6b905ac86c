"""gpio.output and gpio.pwm on mock pins: initial and safe states, pulses, levels."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.gpio import output as output_module
from drivers.gpio.output import OutputConfig, OutputDriver
from drivers.gpio.pwm import LEVEL, PwmConfig, PwmDriver
from hubd.core.config import load_config
from hubd.core.resources import SharedResources
from hubd.errors import ConfigError, DriverUnavailable, InvalidValue
from hubd.testing.drivers import Recorder, make_context


async def make_output(resources: SharedResources, **options: Any) -> tuple[OutputDriver, Recorder]:
    ctx, rec = make_context(node_id="relay", resources=resources)
    driver = OutputDriver(OutputConfig(id="relay", driver="gpio.output", pin=17, **options), ctx)
    await driver.start()
    return driver, rec


def pin_history(pin: Any) -> list[bool]:
    return [bool(s.state) for s in pin.states]


async def test_initial_on_with_an_active_low_relay(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_output(resources, active_high=False, initial=True)
    pin = factory.pin(17)
    assert pin.state == 0, "active low: on is a low pin"
    assert rec.latest("state").value is True  # type: ignore[union-attr]
    await driver.write("state", False)
    assert pin.state == 1
    assert [v.value for v in rec.values] == [True, False]
    await driver.stop()


@pytest.mark.parametrize(("safe_state", "expected"), [(False, False), (True, True)])
async def test_stop_sets_the_safe_state_before_releasing(
    resources: SharedResources,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    safe_state: bool,
    expected: bool,
) -> None:
    driver, _ = await make_output(resources, initial=not safe_state, safe_state=safe_state)
    pin = factory.pin(17)
    at_release: list[bool] = []
    release = output_module.close_device

    def spy(device: Any) -> None:
        # Mock PWM pins drop to 0 when closed; what counts is the state at release.
        at_release.append(bool(pin.state))
        release(device)

    monkeypatch.setattr(output_module, "close_device", spy)
    await driver.stop()
    assert at_release == [expected]
    assert pin.function == "input", "released"
    await driver.stop()  # idempotent


async def test_pulse_turns_itself_off_and_publishes_it(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_output(resources, pulse=0.05)
    pin = factory.pin(17)
    await driver.write("state", True)
    assert pin.state == 1
    values = await rec.wait_for(3)
    assert [v.value for v in values] == [False, True, False]
    assert pin.state == 0
    assert pin_history(pin)[-2:] == [True, False]
    [read] = await driver.read(frozenset())
    assert read.value is False
    await driver.stop()


async def test_a_new_write_restarts_or_ends_the_pulse(
    resources: SharedResources, factory: Any
) -> None:
    driver, rec = await make_output(resources, pulse=60)
    await driver.write("state", True)
    first = driver._pulse_end
    assert first is not None
    await driver.write("state", True)  # the bell button pressed again: a fresh pulse
    assert first.cancelled()
    assert driver._pulse_end is not None
    assert driver._pulse_end is not first
    await driver.write("state", False)
    assert driver._pulse_end is None
    assert factory.pin(17).state == 0
    assert [v.value for v in rec.values] == [False, True, True, False]
    await driver.stop()


async def test_stop_cancels_the_pulse_timer(resources: SharedResources, factory: Any) -> None:
    driver, _ = await make_output(resources, pulse=60)
    await driver.write("state", True)
    timer = driver._pulse_end
    await driver.stop()
    assert timer is not None
    assert timer.cancelled()
    assert factory.pin(17).function == "input"
    with pytest.raises(DriverUnavailable):
        await driver.write("state", True)


def test_pulse_and_initial_on_are_refused() -> None:
    with pytest.raises(ValidationError, match="initial: must be false with pulse"):
        OutputConfig(id="gate", driver="gpio.output", pin=5, pulse=1.5, initial=True)
    with pytest.raises(ValidationError):
        OutputConfig(id="gate", driver="gpio.output", pin=5, pulse=0)


async def test_pwm_sets_frequency_and_levels(resources: SharedResources, factory: Any) -> None:
    ctx, rec = make_context(node_id="dimmer", resources=resources)
    config = PwmConfig(id="dimmer", driver="gpio.pwm", pin=18, frequency=200, initial=0.25)
    driver = PwmDriver(config, ctx)
    await driver.start()
    pin = factory.pin(18)
    assert pin.frequency == 200
    assert pin.state == 0.25
    assert rec.latest("level").value == Decimal("0.250")  # type: ignore[union-attr]
    await driver.write("level", LEVEL.coerce("0.5"))
    assert pin.state == 0.5
    await driver.write("level", LEVEL.coerce(1))
    assert pin.state == 1.0
    assert [v.value for v in rec.values] == [Decimal("0.250"), Decimal("0.500"), Decimal("1.000")]
    [read] = await driver.read(frozenset())
    assert read.value == Decimal("1.000")
    await driver.stop()
    assert pin.state == 0.0, "off when hubd stops"
    await driver.stop()


async def test_pwm_active_low_inverts_the_duty_cycle(
    resources: SharedResources, factory: Any
) -> None:
    ctx, _ = make_context(node_id="fan", resources=resources)
    config = PwmConfig(id="fan", driver="gpio.pwm", pin=12, active_high=False, frequency=25000)
    driver = PwmDriver(config, ctx)
    await driver.start()
    await driver.write("level", Decimal("0.2"))
    assert factory.pin(12).state == pytest.approx(0.8)
    await driver.stop()


def test_pwm_level_range_is_checked_before_the_driver() -> None:
    with pytest.raises(InvalidValue, match="above the maximum"):
        LEVEL.coerce("1.5")
    with pytest.raises(InvalidValue, match="below the minimum"):
        LEVEL.coerce(-0.1)


async def test_pwm_pin_that_cannot_be_opened(resources: SharedResources) -> None:
    ctx, _ = make_context(resources=resources)
    first = OutputDriver(OutputConfig(id="a", driver="gpio.output", pin=13), ctx)
    second = PwmDriver(PwmConfig(id="b", driver="gpio.pwm", pin=13), ctx)
    await first.start()
    with pytest.raises(DriverUnavailable, match="GPIO13 cannot be opened"):
        await second.start()
    await second.stop()
    await first.stop()


def test_two_devices_on_one_pin_are_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        "devices:\n"
        "  - {id: lamp, driver: gpio.output, pin: 18}\n"
        "  - {id: dimmer, driver: gpio.pwm, pin: 18}\n"
        "  - {id: t1, driver: gpio.onewire, sensor_id: 28-0316a2795aff}\n"
        "  - {id: t2, driver: gpio.onewire, sensor_id: 28-0316a2795aff}\n"
        "  - {id: pi, driver: system}\n"
        "  - {id: pi-usb, driver: system, disk_path: /mnt/usb}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    found = [str(p) for p in info.value.problems]
    assert len(found) == 2, found
    assert "devices[1] (dimmer): gpio:18 is already used by device 'lamp'" in found[0]
    assert "devices[3] (t2): w1:28-0316a2795aff is already used by device 't1'" in found[1]


async def test_initial_restore_brings_back_the_last_state(
    resources: SharedResources, factory: Any, tmp_path: Path
) -> None:
    from dataclasses import replace

    from hubd.core.memory import FileMemory

    memory = FileMemory(tmp_path / "nodes" / "relay.json")

    async def run_once(value: bool | None) -> bool:
        ctx, rec = make_context(node_id="relay", resources=resources)
        ctx = replace(ctx, memory=memory)
        config = OutputConfig(id="relay", driver="gpio.output", pin=17, initial="restore")
        driver = OutputDriver(config, ctx)
        await driver.start()
        started = rec.values[0].value
        if value is not None:
            await driver.write("state", value)
        await driver.stop()  # safe_state (off) on the pin; the memory keeps the last write
        return bool(started)

    assert await run_once(True) is False, "nothing remembered yet: off"
    assert await run_once(None) is True, "restored after a restart"
    assert await run_once(False) is True
    assert await run_once(None) is False
    (tmp_path / "nodes" / "relay.json").write_text("{broken")
    assert await run_once(None) is False, "an unreadable memory is ignored"


def test_restore_and_pulse_do_not_mix() -> None:
    with pytest.raises(ValidationError, match="initial: must be false with pulse"):
        OutputConfig(id="gate", driver="gpio.output", pin=5, pulse=1.0, initial="restore")
