"""``system``: the Pi itself as a node: CPU temperature, load, memory, disk, uptime.

Everything comes from the kernel's text files (``/proc/loadavg``,
``/proc/meminfo``, ``/proc/uptime``, ``/sys/class/thermal/thermal_zone0/temp``)
under a configurable root, so tests read a fake tree made of real contents,
and from ``statvfs`` of one mounted path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import Field, field_validator

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import DriverUnavailable, ReadoutError

_PERCENT_STEP = Decimal("0.1")


def _number(name: str, unit: str | None, decimals: int, description: str) -> FieldSpec:
    return FieldSpec(
        name=name, type=FieldType.NUMERIC, unit=unit, decimals=decimals, description=description
    )


FIELDS = (
    _number("cpu_temperature", "°C", 3, "SoC temperature (thermal zone 0)"),
    _number("load_1m", None, 2, "load average over 1 minute"),
    _number("load_5m", None, 2, "load average over 5 minutes"),
    _number("load_15m", None, 2, "load average over 15 minutes"),
    _number("memory_used", "%", 1, "memory in use (total minus available)"),
    _number("disk_used", "%", 1, "space used on disk_path, as df's Use% counts it"),
    FieldSpec(
        name="uptime",
        type=FieldType.DURATION,
        categories=frozenset({Category.STATUS}),
        description="time since the Pi booted (whole seconds)",
    ),
)


class SystemConfig(DriverConfig):
    """Keys of a ``system`` device."""

    root: Path = Field(
        default=Path("/"), description="where /proc and /sys are found (a fake tree in tests)"
    )
    disk_path: Path = Field(default=Path("/"), description="a path on the disk to report")
    poll_interval: float = Field(default=60.0, ge=1, le=86400, description="seconds between reads")

    @field_validator("root", "disk_path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value


@dataclass(frozen=True, slots=True)
class SystemReading:
    """One reading of every figure; ``cpu_temperature`` is None without a thermal zone."""

    cpu_temperature: Decimal | None
    load: tuple[Decimal, Decimal, Decimal]
    memory_used: Decimal
    disk_used: Decimal
    uptime: timedelta

    def values(self) -> dict[str, Value]:
        """The fields, by name, leaving out what could not be read."""
        values: dict[str, Value] = {
            "load_1m": self.load[0],
            "load_5m": self.load[1],
            "load_15m": self.load[2],
            "memory_used": self.memory_used,
            "disk_used": self.disk_used,
            "uptime": self.uptime,
        }
        if self.cpu_temperature is not None:
            values = {"cpu_temperature": self.cpu_temperature, **values}
        return values


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ReadoutError(f"{what}: not a number: {text.strip()!r}") from None
    if not value.is_finite():
        raise ReadoutError(f"{what}: not a number: {text.strip()!r}")
    return value


def parse_loadavg(text: str) -> tuple[Decimal, Decimal, Decimal]:
    """``0.52 0.58 0.59 1/389 12345`` -> the three load averages."""
    parts = text.split()
    if len(parts) < 3:
        raise ReadoutError(f"/proc/loadavg: unexpected contents {text.strip()!r}")
    return (
        _decimal(parts[0], "/proc/loadavg"),
        _decimal(parts[1], "/proc/loadavg"),
        _decimal(parts[2], "/proc/loadavg"),
    )


def parse_meminfo(text: str) -> Decimal:
    """Percent of memory in use: (MemTotal - MemAvailable) / MemTotal."""
    kib: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            kib[key.strip()] = int(fields[0])
    total = kib.get("MemTotal")
    if not total:
        raise ReadoutError("/proc/meminfo: no MemTotal")
    available = kib.get("MemAvailable")
    if available is None:
        # Kernels before 3.14 lack MemAvailable; free + caches is the old estimate.
        available = kib.get("MemFree", 0) + kib.get("Buffers", 0) + kib.get("Cached", 0)
    used = Decimal(total - available) * 100 / Decimal(total)
    return used.quantize(_PERCENT_STEP)


def parse_uptime(text: str) -> timedelta:
    """``350735.47 234388.90`` -> the first number, in whole seconds."""
    parts = text.split()
    if not parts:
        raise ReadoutError("/proc/uptime is empty")
    return timedelta(seconds=int(_decimal(parts[0], "/proc/uptime")))


def parse_thermal(text: str) -> Decimal:
    """Millidegrees (``48312``) -> °C (``48.312``)."""
    return _decimal(text, "thermal_zone0/temp").scaleb(-3)


def disk_used_percent(path: Path) -> Decimal:
    """Percent used as ``df`` shows it: used / (used + available to users)."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    if used + avail == 0:
        return Decimal(0).quantize(_PERCENT_STEP)
    return (Decimal(used) * 100 / Decimal(used + avail)).quantize(_PERCENT_STEP)


def read_system(root: Path, disk_path: Path) -> SystemReading:
    """Read every figure (blocking: call in a thread)."""
    proc = root / "proc"
    try:
        load = parse_loadavg((proc / "loadavg").read_text())
        memory = parse_meminfo((proc / "meminfo").read_text())
        uptime = parse_uptime((proc / "uptime").read_text())
    except OSError as err:
        raise ReadoutError(f"cannot read {err.filename}: {err.strerror}") from err
    try:
        disk = disk_used_percent(disk_path)
    except OSError as err:
        raise ReadoutError(f"cannot stat {disk_path}: {err.strerror}") from err
    try:
        temp_text = (root / "sys/class/thermal/thermal_zone0/temp").read_text()
    except OSError:
        # No thermal zone (a VM, some boards): the other figures still count.
        cpu_temperature = None
    else:
        cpu_temperature = parse_thermal(temp_text)
    return SystemReading(cpu_temperature, load, memory, disk, uptime)


class SystemDriver(Driver[SystemConfig]):
    """The Pi itself: CPU temperature, load, memory, disk and uptime, polled.

    Options: ``root`` (default ``/``: where ``proc/`` and ``sys/`` are read),
    ``disk_path`` (default ``/``: a path on the disk whose use is reported),
    ``poll_interval`` (seconds, default 60).

    Fields: ``cpu_temperature`` (°C; absent without a thermal zone),
    ``load_1m``, ``load_5m``, ``load_15m`` (load averages), ``memory_used``
    (%, total minus available), ``disk_used`` (% as df counts it), ``uptime``
    (duration, status).
    """

    kind = "system"
    config_model = SystemConfig
    static_fields = FIELDS

    def __init__(self, config: SystemConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.poll_interval = config.poll_interval

    def describe(self) -> NodeSpec:
        """Every figure of the Pi."""
        return NodeSpec(fields=FIELDS)

    async def start(self) -> None:
        """Check that the kernel's files are there, then publish a first reading."""
        uptime = self.config.root / "proc" / "uptime"
        if not await asyncio.to_thread(uptime.is_file):
            raise DriverUnavailable(f"{uptime} not found: is this Linux, is root right?")
        self.ctx.publish(await self.read(frozenset()))

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """Read every figure off the loop (the hub keeps the ones asked for)."""
        reading = await asyncio.to_thread(read_system, self.config.root, self.config.disk_path)
        now = self.ctx.now()
        return [FieldValue(name, value, now) for name, value in reading.values().items()]
