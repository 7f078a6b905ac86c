"""gpio.onewire on a fake sysfs tree holding real w1_therm file contents."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers.gpio.onewire import OneWireConfig, OneWireDriver, parse_w1_slave
from hubd.core.backoff import Backoff
from hubd.core.hub import Hub
from hubd.core.model import FieldValue, NodeState
from hubd.core.node import Node
from hubd.core.supervisor import NodeSupervisor
from hubd.errors import DriverUnavailable, ReadoutError
from hubd.testing.drivers import Recorder, make_context

SENSOR = "28-0316a2795aff"

# What a DS18B20 at 23.125 °C shows in w1_slave: the 9 scratchpad bytes, the
# CRC verdict, then the temperature in millidegrees (0x0172 = 370 sixteenths).
W1_SLAVE_OK = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
W1_SLAVE_BAD_CRC = "72 01 4b 46 7f ff 0e 10 57 : crc=3c NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
W1_SLAVE_NEGATIVE = "5e ff 4b 46 7f ff 02 10 3d : crc=3d YES\n5e ff 4b 46 7f ff 02 10 3d t=-10125\n"
W1_SLAVE_ZEROS = "00 00 00 00 00 00 00 00 00 : crc=00 YES\n00 00 00 00 00 00 00 00 00 t=0\n"


def make_sensor(
    base: Path, w1_slave: str | None = W1_SLAVE_OK, temperature: str | None = None
) -> Path:
    folder = base / SENSOR
    folder.mkdir(parents=True, exist_ok=True)
    if w1_slave is not None:
        (folder / "w1_slave").write_text(w1_slave)
    if temperature is not None:
        (folder / "temperature").write_text(temperature)
    return folder


def make_driver(base: Path) -> tuple[OneWireDriver, Recorder]:
    ctx, rec = make_context(node_id="garden")
    config = OneWireConfig(id="garden", driver="gpio.onewire", sensor_id=SENSOR, base_path=base)
    return OneWireDriver(config, ctx), rec


@pytest.mark.parametrize(
    ("text", "expected"),
    [(W1_SLAVE_OK, Decimal("23.125")), (W1_SLAVE_NEGATIVE, Decimal("-10.125"))],
)
def test_w1_slave_parses_with_the_sensors_decimals(text: str, expected: Decimal) -> None:
    value = parse_w1_slave(text)
    assert value == expected
    assert str(value) == str(expected), "three decimals kept"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (W1_SLAVE_BAD_CRC, "CRC check failed"),
        (W1_SLAVE_ZEROS, "all zeros"),
        ("", "unexpected w1_slave contents"),
        ("72 01 : crc=57 YES\n72 01 t=abc\n", "not a temperature"),
    ],
)
def test_bad_w1_slave_is_a_readout_error(text: str, message: str) -> None:
    with pytest.raises(ReadoutError, match=message):
        parse_w1_slave(text)


async def test_start_publishes_a_first_reading_from_w1_slave(tmp_path: Path) -> None:
    make_sensor(tmp_path)
    driver, rec = make_driver(tmp_path)
    assert driver.poll_interval == 30.0
    await driver.start()
    [value] = rec.values
    assert (value.name, value.value) == ("temperature", Decimal("23.125"))
    await driver.stop()


async def test_the_newer_temperature_file_is_preferred(tmp_path: Path) -> None:
    make_sensor(tmp_path, w1_slave=W1_SLAVE_BAD_CRC, temperature="21062\n")
    driver, _ = make_driver(tmp_path)
    [value] = await driver.read(frozenset())
    assert value.value == Decimal("21.062")


async def test_crc_failure_and_io_error_are_readout_errors(tmp_path: Path) -> None:
    folder = make_sensor(tmp_path, w1_slave=W1_SLAVE_BAD_CRC)
    driver, _ = make_driver(tmp_path)
    with pytest.raises(ReadoutError, match="CRC check failed"):
        await driver.read(frozenset())
    (folder / "w1_slave").unlink()
    with pytest.raises(ReadoutError, match="offers no temperature file"):
        await driver.read(frozenset())
    # The kernel answers EIO on ``temperature`` when its CRC check fails; any
    # OSError on the file is the same failed read.
    (folder / "temperature").mkdir()
    with pytest.raises(ReadoutError, match="could not be read"):
        await driver.read(frozenset())


async def test_missing_sensor_at_start_says_what_to_check(tmp_path: Path) -> None:
    driver, _ = make_driver(tmp_path)
    with pytest.raises(DriverUnavailable, match=f"1-Wire sensor {SENSOR} not found in {tmp_path}"):
        await driver.start()
    await driver.stop()


async def test_unplugged_sensor_is_unavailable(tmp_path: Path) -> None:
    folder = make_sensor(tmp_path)
    driver, _ = make_driver(tmp_path)
    await driver.start()
    (folder / "w1_slave").unlink()
    folder.rmdir()
    with pytest.raises(DriverUnavailable, match="is gone"):
        await driver.read(frozenset())


def test_config_checks_id_and_path() -> None:
    with pytest.raises(ValidationError, match="sensor_id"):
        OneWireConfig(id="t", driver="gpio.onewire", sensor_id="28-XYZ")
    with pytest.raises(ValidationError, match="must be an absolute path"):
        OneWireConfig(id="t", driver="gpio.onewire", sensor_id=SENSOR, base_path=Path("w1"))
    config = OneWireConfig(id="t", driver="gpio.onewire", sensor_id=SENSOR)
    assert config.base_path == Path("/sys/bus/w1/devices")
    assert list(config.claims()) == [f"w1:{SENSOR}"], "no gpio pin claimed"


class Changes:
    """A hub listener that lets a test wait for a value or a state."""

    def __init__(self) -> None:
        self.values: list[FieldValue] = []
        self.changed = asyncio.Event()

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        self.values.extend(values)
        self.changed.set()

    def on_state(self, node: Node) -> None:
        self.changed.set()

    async def until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not check():
                self.changed.clear()
                await self.changed.wait()


async def test_supervisor_polls_and_a_lost_sensor_takes_only_its_node_offline(
    tmp_path: Path,
) -> None:
    folder = make_sensor(tmp_path)
    hub = Hub(())
    ctx, _ = make_context(node_id="garden")
    # Route what the driver publishes into the hub, as the app does.
    ctx = dataclasses.replace(ctx, publish=lambda values: hub.ingest("garden", values))
    config = OneWireConfig(id="garden", driver="gpio.onewire", sensor_id=SENSOR, base_path=tmp_path)
    driver = OneWireDriver(config, ctx)
    driver.poll_interval = 0.01  # the config allows 1 s at least; a test need not wait that
    node = Node.create(config, driver)
    hub.nodes[node.id] = node
    changes = Changes()
    hub.add_listener(changes)
    supervisor = NodeSupervisor(hub, node, Backoff(base=0.01, cap=0.02))
    task = asyncio.create_task(supervisor.run())
    try:
        await changes.until(lambda: node.cache.get("temperature") is not None)
        assert node.cache["temperature"].value == Decimal("23.125")
        (folder / "w1_slave").write_text(W1_SLAVE_NEGATIVE)
        await changes.until(lambda: node.cache["temperature"].value == Decimal("-10.125"))
        (folder / "w1_slave").write_text(W1_SLAVE_BAD_CRC)
        await changes.until(lambda: node.state is NodeState.OFFLINE)
        assert node.state_message == "CRC check failed (noise on the bus or a loose wire)"
        (folder / "w1_slave").write_text(W1_SLAVE_OK)
        await changes.until(lambda: node.state is NodeState.ONLINE)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
