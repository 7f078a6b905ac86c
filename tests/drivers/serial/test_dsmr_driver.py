"""``serial.dsmr`` against a simulated P1 port: captured telegrams played on a pty."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_lines_driver import PtyDevice, has, wait_until

from drivers.serial import dsmr_protocol
from drivers.serial.dsmr import DsmrConfig, DsmrDriver, convert_unit
from hubd.errors import DriverUnavailable
from hubd.testing.drivers import Recorder, make_context

FIXTURES = Path(__file__).parent / "fixtures"


def telegram(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def config(port: Path, **keys: Any) -> DsmrConfig:
    raw = {"id": "meter", "driver": "serial.dsmr", "port": str(port), **keys}
    return DsmrConfig.model_validate(raw)


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[PtyDevice]:
    dev = PtyDevice(tmp_path / "usb-P1_Converter_Cable_v2-if00-port0")
    dev.plug()
    yield dev
    dev.unplug()


@pytest.fixture
async def meter(device: PtyDevice) -> AsyncIterator[tuple[DsmrDriver, Recorder, list[Any]]]:
    ctx, rec = make_context("meter")
    lost: list[Any] = []
    ctx = dataclasses.replace(ctx, set_available=lambda ok, why: lost.append((ok, why)))
    driver = DsmrDriver(config(device.link), ctx)
    await driver.start()
    yield driver, rec, lost
    await driver.stop()


def values(rec: Recorder) -> dict[str, object]:
    return {v.name: v.value for v in rec.values}


async def test_config_defaults_fit_dsmr5_and_accept_dsmr2_settings() -> None:
    cfg = config(Path("/dev/serial/by-id/usb-P1"))
    assert cfg.serial_options() == {"baudrate": 115200, "bytesize": 8, "parity": "N", "stopbits": 1}
    assert cfg.silence_timeout == 60.0
    old = config(Path("/x"), baudrate=9600, bytesize=7, parity="even", silence_timeout="2m")
    assert old.serial_options()["parity"] == "E"
    assert old.silence_timeout == 120.0
    with pytest.raises(ValidationError, match="verify_crc"):
        config(Path("/x"), verify_crc=False)


def test_every_protocol_field_is_described_with_its_unit() -> None:
    described = {spec.name: spec for spec in DsmrDriver.static_fields}
    for name, kind in dsmr_protocol._EMETER.values():
        if kind == "skip":
            continue
        assert name in described, name
        if kind == "timed":
            assert f"{name}_timestamp" in described
    for prefix in ("gas", "water", "heat", "hot_water"):
        for suffix in ("delivered", "timestamp", "equipment_id", "device_type", "valve_state"):
            assert f"{prefix}_{suffix}" in described
    assert described["energy_delivered_tariff1"].unit == "kWh"
    assert described["gas_delivered"].unit == "m3"
    assert {"errors", "last_error"} <= set(described)


def test_units_convert_exactly_between_prefixes() -> None:
    assert convert_unit(Decimal("006545766"), "Wh", "kWh") == Decimal("6545.766")
    assert str(convert_unit(Decimal("000000286"), "W", "kW")) == "0.286"
    assert convert_unit(Decimal("1.5"), "kW", "kW") == Decimal("1.5")
    assert convert_unit(Decimal("2"), "MWh", "kWh") == Decimal("2000")
    assert convert_unit(Decimal("16"), "A", "kW") is None
    assert convert_unit(Decimal("1"), "kWh", "GJ") is None


async def test_dsmr5_telegram_gives_named_values_with_units(
    device: PtyDevice, meter: tuple[DsmrDriver, Recorder, list[Any]]
) -> None:
    driver, rec, lost = meter
    data = telegram("dsmr50_iskra_am550.txt")
    for start in range(0, len(data), 97):  # a telegram arrives in pieces
        device.write(data[start : start + 97])
    await wait_until(rec, lambda: rec.latest("power_returned_l3") is not None)
    got = values(rec)
    assert got["energy_delivered_tariff1"] == Decimal("3432.829")
    assert str(got["power_delivered"]) == "0.433", "decimals as sent"
    assert got["voltage_l1"] == Decimal("236.7")
    assert got["tariff"] == 1
    assert got["dsmr_version"] == "50"
    assert got["timestamp"] == datetime(2019, 3, 24, 15, 5, 41, tzinfo=timezone(timedelta(hours=1)))
    assert got["errors"] == 0
    read = {v.name: v.value for v in await driver.read(frozenset({"voltage_l2", "errors"}))}
    assert read == {"voltage_l2": Decimal("234.5"), "errors": 0}
    assert lost == []


async def test_other_versions_and_units(
    device: PtyDevice, meter: tuple[DsmrDriver, Recorder, list[Any]]
) -> None:
    _, rec, _ = meter
    device.write(telegram("dsmr42_kaifa.txt"))
    device.write(telegram("sagemcom_t210_d_r.txt"))
    await wait_until(rec, has(rec, "energy_delivered_total", Decimal("6545.766")))
    assert rec.latest("power_delivered").value == Decimal("0.286")  # type: ignore[union-attr]
    kaifa = [v for v in rec.values if v.name == "dsmr_version"]
    assert [v.value for v in kaifa] == ["42", "50"]
    gas = [v.value for v in rec.values if v.name == "gas_delivered"]
    assert gas
    assert all(isinstance(g, Decimal) for g in gas)


async def test_wrong_crc_and_noise_are_counted_and_the_node_stays_up(
    device: PtyDevice, meter: tuple[DsmrDriver, Recorder, list[Any]]
) -> None:
    driver, rec, lost = meter
    good = telegram("dsmr50_iskra_am550.txt")
    corrupted = good.replace(b"236.7*V", b"239.7*V")
    device.write(corrupted)
    device.write(b"\x00\xff\x13 line noise \xfe\x01")
    device.write(good[: len(good) // 2])  # cut off: the meter restarted
    device.write(good)
    await wait_until(rec, has(rec, "voltage_l1", Decimal("236.7")))
    assert not any(v.name == "voltage_l1" and v.value == Decimal("239.7") for v in rec.values)
    status = {v.name: v.value for v in await driver.read(frozenset({"errors", "last_error"}))}
    assert status["errors"] == 1
    assert str(status["last_error"]).startswith("crc: ")
    assert lost == []


async def test_dsmr2_telegram(device: PtyDevice) -> None:
    ctx, rec = make_context("old")
    # Real DSMR 2.2 meters need 7E1; Linux ptys cannot store 7 bits with parity (below).
    driver = DsmrDriver(config(device.link, baudrate=9600), ctx)
    await driver.start()
    try:
        device.write(telegram("dsmr22_iskra.txt"))
        await wait_until(rec, lambda: rec.latest("gas_delivered") is not None)
        assert rec.latest("gas_delivered").value == Decimal("1.001")  # type: ignore[union-attr]
        assert rec.latest("limiter_threshold").value == Decimal("999.00")  # type: ignore[union-attr]
    finally:
        await driver.stop()


async def test_settings_a_port_refuses_make_it_unavailable(device: PtyDevice) -> None:
    cfg = config(device.link, baudrate=9600, bytesize=7, parity="even")
    driver = DsmrDriver(cfg, make_context("old")[0])
    with pytest.raises(DriverUnavailable, match="cannot set up"):
        await driver.start()
    await driver.stop()


async def test_unplug_then_replug_gives_fresh_telegrams(device: PtyDevice) -> None:
    ctx, rec = make_context("meter")
    gone = asyncio.Event()
    reports: list[tuple[bool, str | None]] = []

    def set_available(ok: bool, why: str | None) -> None:
        reports.append((ok, why))
        gone.set()

    driver = DsmrDriver(config(device.link), dataclasses.replace(ctx, set_available=set_available))
    await driver.start()
    good = telegram("dsmr50_iskra_am550.txt")
    device.write(good)
    await wait_until(rec, has(rec, "voltage_l1", Decimal("236.7")))
    device.unplug()
    async with asyncio.timeout(5):
        await gone.wait()
    assert len(reports) == 1
    assert "unplugged" in str(reports[0][1])
    await driver.stop()
    device.plug()
    await driver.start()
    try:
        body = good.replace(b"236.7*V", b"231.0*V").split(b"!")[0] + b"!"
        device.write(body + b"%04X\r\n" % dsmr_protocol.crc16(body))
        await wait_until(rec, has(rec, "voltage_l1", Decimal("231.0")))
        assert len(reports) == 1
    finally:
        await driver.stop()


async def test_a_silent_meter_is_reported_gone(device: PtyDevice) -> None:
    ctx, _ = make_context("meter")
    gone = asyncio.Event()
    reports: list[str | None] = []

    def set_available(ok: bool, why: str | None) -> None:
        reports.append(why)
        gone.set()

    cfg = config(device.link, silence_timeout=0.2)
    driver = DsmrDriver(cfg, dataclasses.replace(ctx, set_available=set_available))
    await driver.start()
    try:
        device.write(b"/partial")  # data resets the clock; then nothing more comes
        async with asyncio.timeout(5):
            await gone.wait()
        assert reports == [f"{device.link}: nothing received for 0.2 s"]
    finally:
        await driver.stop()
    with pytest.raises(DriverUnavailable):
        await driver.read(frozenset())
