"""``gpio.onewire``: a DS18B20 (or another w1_therm) thermometer on the Pi's 1-Wire bus.

The kernel's w1-gpio overlay drives the bus; its w1_therm driver presents each
sensor as a folder of files under ``/sys/bus/w1/devices/<sensor id>/``.  This
driver only reads those files, so it needs no gpiozero and claims no pin (the
bus pin belongs to the kernel).  Newer kernels offer ``temperature``
(millidegrees, the CRC checked by the kernel); every kernel offers
``w1_slave``, two lines whose first ends ``crc=xx YES`` and whose second ends
``t=<millidegrees>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

from pydantic import Field, field_validator

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec
from hubd.errors import DriverUnavailable, ReadoutError

DEFAULT_BASE = Path("/sys/bus/w1/devices")

TEMPERATURE = FieldSpec(
    name="temperature",
    type=FieldType.NUMERIC,
    unit="°C",
    decimals=3,
    categories=frozenset({Category.MOMENTARY}),
    description="temperature as the sensor reports it (DS18B20: 0.0625 °C steps)",
)


class OneWireConfig(DriverConfig):
    """Keys of a ``gpio.onewire`` device."""

    sensor_id: str = Field(
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{12}$",
        description="the sensor's id, a folder name in base_path, e.g. 28-0316a2795aff",
    )
    base_path: Path = Field(
        default=DEFAULT_BASE, description="where the kernel lists 1-Wire devices (absolute)"
    )
    poll_interval: float = Field(default=30.0, ge=1, le=86400, description="seconds between reads")

    @field_validator("base_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    def claims(self) -> Iterable[str]:
        """One node per sensor; the bus pin is the kernel's, not claimed here."""
        return (f"w1:{self.sensor_id}",)


def parse_w1_slave(text: str) -> Decimal:
    """Return the temperature in a ``w1_slave`` file's text; ReadoutError if it is bad."""
    lines = text.strip().splitlines()
    if len(lines) < 2 or "crc=" not in lines[0] or "t=" not in lines[1]:
        raise ReadoutError(f"unexpected w1_slave contents: {text.strip()!r}")
    if not lines[0].rstrip().endswith("YES"):
        raise ReadoutError("CRC check failed (noise on the bus or a loose wire)")
    scratchpad = lines[0].partition(":")[0].split()
    if scratchpad and all(byte == "00" for byte in scratchpad):
        # All zeros passes the CRC (its CRC is 00) but is no reading: the data
        # line is held low, typically a sensor without power.
        raise ReadoutError("the sensor answered all zeros (check its power wire)")
    return _millidegrees(lines[1].rpartition("t=")[2])


def _millidegrees(text: str) -> Decimal:
    try:
        value = int(text.strip())
    except ValueError:
        raise ReadoutError(f"not a temperature: {text.strip()!r}") from None
    return Decimal(value).scaleb(-3)


def read_sensor(folder: Path) -> Decimal:
    """Read one sensor's folder (blocking: call in a thread)."""
    if not folder.is_dir():
        raise DriverUnavailable(f"1-Wire sensor {folder.name} is gone from {folder.parent}")
    try:
        try:
            return _millidegrees((folder / "temperature").read_text())
        except FileNotFoundError:
            pass  # an older kernel: only w1_slave
        return parse_w1_slave((folder / "w1_slave").read_text())
    except FileNotFoundError as err:
        raise ReadoutError(f"{folder.name} offers no temperature file ({err.filename})") from err
    except OSError as err:
        # The kernel answers EIO when its own CRC check fails on ``temperature``.
        raise ReadoutError(f"{folder.name} could not be read: {err.strerror or err}") from err


class OneWireDriver(Driver[OneWireConfig]):
    """A DS18B20 thermometer on the 1-Wire bus, read through the kernel's w1 files.

    Options: ``sensor_id`` (the folder name under the base path, e.g.
    ``28-0316a2795aff``; list them with ``ls /sys/bus/w1/devices``),
    ``base_path`` (default ``/sys/bus/w1/devices``), ``poll_interval``
    (seconds, default 30).  Needs ``dtoverlay=w1-gpio`` in the Pi's
    config.txt (GPIO4 by default; keep that pin free of other devices).

    Field: ``temperature`` (numeric, °C, 3 decimals as the kernel gives them),
    polled.  A failed CRC is a failed read; a sensor missing at start leaves
    the node offline with a message, and it is retried.
    """

    kind = "gpio.onewire"
    config_model = OneWireConfig
    static_fields = (TEMPERATURE,)

    def __init__(self, config: OneWireConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.poll_interval = config.poll_interval
        self._folder = config.base_path / config.sensor_id

    def describe(self) -> NodeSpec:
        """One number, ``temperature``."""
        return NodeSpec(fields=(TEMPERATURE,))

    async def start(self) -> None:
        """Check that the sensor is there, then publish a first reading."""
        folder = self._folder
        if not await asyncio.to_thread(folder.is_dir):
            raise DriverUnavailable(
                f"1-Wire sensor {self.config.sensor_id} not found in {self.config.base_path} "
                "(check the wiring and dtoverlay=w1-gpio in config.txt)"
            )
        self.ctx.publish(await self.read(frozenset()))

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """Read the sensor (the kernel takes up to 750 ms per conversion) off the loop."""
        value = await asyncio.to_thread(read_sensor, self._folder)
        return [self.ctx.value("temperature", value)]
