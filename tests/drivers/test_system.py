"""The ``system`` driver on a fake /proc and /sys tree holding real file contents."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from drivers.system import (
    SystemConfig,
    SystemDriver,
    parse_loadavg,
    parse_meminfo,
    parse_uptime,
)
from hubd.errors import DriverUnavailable, ReadoutError
from hubd.testing.drivers import Recorder, make_context

LOADAVG = "0.52 0.58 0.59 1/389 12345\n"
UPTIME = "350735.47 1384126.29\n"
THERMAL = "48312\n"
# The top of /proc/meminfo of a Raspberry Pi 4 (4 GB) running Bookworm.
MEMINFO = """\
MemTotal:        3884328 kB
MemFree:         2403232 kB
MemAvailable:    3274408 kB
Buffers:           58164 kB
Cached:           923052 kB
SwapCached:            0 kB
Active:           466796 kB
Inactive:         845236 kB
SwapTotal:        102396 kB
SwapFree:         102396 kB
Dirty:                64 kB
AnonPages:        330844 kB
Shmem:             20188 kB
KReclaimable:      41708 kB
Slab:              72620 kB
CmaTotal:         524288 kB
CmaFree:          505668 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""
# A kernel before 3.14 has no MemAvailable.
MEMINFO_OLD = """\
MemTotal:         947732 kB
MemFree:          503240 kB
Buffers:           23080 kB
Cached:           301236 kB
"""


def make_root(tmp_path: Path, *, thermal: bool = True) -> Path:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/loadavg").write_text(LOADAVG)
    (root / "proc/meminfo").write_text(MEMINFO)
    (root / "proc/uptime").write_text(UPTIME)
    if thermal:
        zone = root / "sys/class/thermal/thermal_zone0"
        zone.mkdir(parents=True)
        (zone / "temp").write_text(THERMAL)
    return root


def make_driver(root: Path, disk: Path) -> tuple[SystemDriver, Recorder]:
    ctx, rec = make_context(node_id="pi")
    config = SystemConfig(id="pi", driver="system", root=root, disk_path=disk)
    return SystemDriver(config, ctx), rec


def expected_disk_percent(path: Path) -> Decimal:
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return (Decimal(used) * 100 / Decimal(used + st.f_bavail * st.f_frsize)).quantize(
        Decimal("0.1")
    )


async def test_start_publishes_every_figure(tmp_path: Path) -> None:
    driver, rec = make_driver(make_root(tmp_path), tmp_path)
    assert driver.poll_interval == 60.0
    await driver.start()
    values = {v.name: v.value for v in rec.values}
    assert values == {
        "cpu_temperature": Decimal("48.312"),
        "load_1m": Decimal("0.52"),
        "load_5m": Decimal("0.58"),
        "load_15m": Decimal("0.59"),
        "memory_used": Decimal("15.7"),  # (3884328 - 3274408) / 3884328
        "disk_used": expected_disk_percent(tmp_path),
        "uptime": timedelta(days=4, hours=1, minutes=25, seconds=35),
    }
    assert {v.name for v in rec.values} == {f.name for f in driver.describe().fields}
    await driver.stop()


async def test_no_thermal_zone_leaves_out_only_the_temperature(tmp_path: Path) -> None:
    driver, _ = make_driver(make_root(tmp_path, thermal=False), tmp_path)
    names = {v.name for v in await driver.read(frozenset())}
    assert "cpu_temperature" not in names
    assert "uptime" in names


async def test_missing_proc_is_unavailable_at_start(tmp_path: Path) -> None:
    driver, _ = make_driver(tmp_path / "nowhere", tmp_path)
    with pytest.raises(DriverUnavailable, match="proc/uptime not found"):
        await driver.start()


async def test_unreadable_files_and_disk_are_readout_errors(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    driver, _ = make_driver(root, tmp_path / "no-such-mount")
    with pytest.raises(ReadoutError, match="cannot stat"):
        await driver.read(frozenset())
    driver, _ = make_driver(root, tmp_path)
    (root / "proc/meminfo").unlink()
    with pytest.raises(ReadoutError, match=r"cannot read .*meminfo"):
        await driver.read(frozenset())


def test_old_kernel_meminfo_estimates_available_memory() -> None:
    # available = free + buffers + cached = 827556 of 947732
    assert parse_meminfo(MEMINFO_OLD) == Decimal("12.7")


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_loadavg, "0.52\n", "unexpected contents"),
        (parse_loadavg, "x y z 1/2 3\n", "not a number"),
        (parse_meminfo, "MemFree: 1 kB\n", "no MemTotal"),
        (parse_uptime, "", "empty"),
        (parse_uptime, "nan 1.0\n", "not a number"),
    ],
)
def test_garbled_files_are_readout_errors(parse: object, text: str, message: str) -> None:
    with pytest.raises(ReadoutError, match=message):
        parse(text)  # type: ignore[operator]


def test_paths_must_be_absolute() -> None:
    with pytest.raises(ValidationError, match="must be an absolute path"):
        SystemConfig(id="pi", driver="system", root=Path("fake"))
    assert list(SystemConfig(id="pi", driver="system").claims()) == []
