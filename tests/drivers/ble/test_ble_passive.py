"""The advertisement drivers on a hand-driven scanner backend: values, dedup, availability."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ble_fakes import FakeBackend
from pydantic import ValidationError

from drivers.ble import passive
from drivers.ble.advertisement import Advertisement
from drivers.ble.bthome_driver import BTHomeConfig, BTHomeDriver
from drivers.ble.passive import PassiveDriver, convert_unit
from drivers.ble.pvvx_driver import PvvxConfig, PvvxDriver
from drivers.ble.ruuvi_driver import RuuviConfig, RuuviDriver
from drivers.ble.scanner import SharedScanner
from hubd.core.driver import DriverContext
from hubd.core.model import FieldType
from hubd.core.resources import SharedResources
from hubd.core.settings import BleSettings, BusSettings
from hubd.errors import DriverUnavailable
from hubd.testing.drivers import Recorder, make_context

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
PVVX = "0000181a-0000-1000-8000-00805f9b34fb"
SPEC_KEY = "231d39c1d7cc1ab1aee224cd096db932"
SPEC_MAC = "54:48:E6:8F:80:A5"
FRIDGE = "A4:C1:38:12:34:56"


class Clock:
    """ctx.now under the test's control."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def backend() -> AsyncIterator[tuple[FakeBackend, SharedResources]]:
    fake = FakeBackend()
    resources = SharedResources()
    resources.get_or_create("ble.scanner:hci0", lambda: SharedScanner(fake), SharedScanner.close)
    yield fake, resources
    await resources.close_all()


def make(
    driver_cls: type[PassiveDriver[Any]],
    resources: SharedResources,
    clock: Clock | None = None,
    **keys: Any,
) -> tuple[Any, Recorder, DriverContext]:
    ctx, rec = make_context(
        keys.get("id", "dev"), settings=BusSettings(ble=BleSettings()), resources=resources
    )
    if clock is not None:
        ctx = dataclasses.replace(ctx, now=clock)
    config = driver_cls.config_model.model_validate(
        {"id": "dev", "driver": driver_cls.kind, **keys}
    )
    return driver_cls(config, ctx), rec, ctx


def bthome(address: str, payload: str, rssi: int = -60) -> Advertisement:
    data = bytes.fromhex(payload.replace(" ", ""))
    return Advertisement(address=address, rssi=rssi, service_data={BTHOME: data})


async def subscribed(driver: Any, fake: FakeBackend) -> asyncio.Task[None]:
    """Begin start() and return once it subscribed and waits to hear the device."""
    task = asyncio.create_task(driver.start())
    # start() does not yield before it waits for the device (an uncontended lock
    # and the fake backend never suspend), so one turn of the loop gets it there.
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await fake.started.wait()
    assert not task.done()
    return task


async def started(driver: Any, fake: FakeBackend, advert: Advertisement) -> None:
    """Start the driver, letting the device be heard once its subscription is in."""
    task = await subscribed(driver, fake)
    fake.send(advert)
    async with asyncio.timeout(5):
        await task


async def test_bthome_publishes_measurements_rssi_and_last_seen(
    backend: tuple[FakeBackend, SharedResources],
) -> None:
    fake, resources = backend
    clock = Clock()
    driver, rec, _ = make(BTHomeDriver, resources, clock, address=FRIDGE)
    await started(driver, fake, bthome(FRIDGE, "40 01 5c 02 0a09 03 bf13", rssi=-61))
    values = {v.name: v.value for v in rec.values}
    assert values == {
        "battery": Decimal(92),
        "temperature": Decimal("23.14"),
        "humidity": Decimal("50.55"),
        "rssi": Decimal(-61),
        "last_seen": clock.now,
    }
    spec = driver.describe()
    assert spec.get("temperature").unit == "°C"  # type: ignore[union-attr]
    assert spec.get("last_seen").type is FieldType.DATETIME  # type: ignore[union-attr]
    assert spec.get("door").type is FieldType.BOOLEAN  # type: ignore[union-attr]
    read = {v.name for v in await driver.read(frozenset({"temperature", "rssi"}))}
    assert read == {"temperature", "rssi"}
    await driver.stop()


async def test_a_resent_reading_is_published_once(
    backend: tuple[FakeBackend, SharedResources], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, resources = backend
    driver, rec, _ = make(BTHomeDriver, resources, address=FRIDGE)
    await started(driver, fake, bthome(FRIDGE, "40 02C409 03BF13"))
    count = len(rec.values)
    fake.send(bthome(FRIDGE, "40 02C409 03BF13"))
    assert len(rec.values) == count
    fake.send(bthome(FRIDGE, "40 02CA09 03BF13"))
    assert rec.latest("temperature").value == Decimal("25.06")  # type: ignore[union-attr]
    # ... but last_seen is refreshed at least every REPUBLISH_AFTER seconds.
    monkeypatch.setattr(passive, "REPUBLISH_AFTER", 0.0)
    count = len(rec.values)
    fake.send(bthome(FRIDGE, "40 02CA09 03BF13"))
    assert len(rec.values) > count
    await driver.stop()


async def test_encrypted_bthome_with_the_bindkey_and_replays_refused(
    backend: tuple[FakeBackend, SharedResources],
) -> None:
    fake, resources = backend
    driver, rec, _ = make(BTHomeDriver, resources, address=SPEC_MAC, bindkey=SPEC_KEY.upper())
    frame = bthome(SPEC_MAC, "41e445f3c9962b332211006c7c4519")
    await started(driver, fake, frame)
    assert rec.latest("temperature").value == Decimal("25.06")  # type: ignore[union-attr]
    count = len(rec.values)
    fake.send(frame)  # the same counter again
    assert len(rec.values) == count
    fake.send(bthome(SPEC_MAC, "4187b90011223372b0231f"))  # another counter: motion
    assert rec.latest("motion").value is True  # type: ignore[union-attr]
    await driver.stop()


async def test_a_wrong_bindkey_is_said_once_and_keeps_the_node_offline(
    backend: tuple[FakeBackend, SharedResources],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, resources = backend
    monkeypatch.setattr(passive, "FIRST_SEEN_WAIT", 0.2)
    driver, rec, _ = make(BTHomeDriver, resources, address=SPEC_MAC, bindkey="00" * 16)
    task = await subscribed(driver, fake)
    for _ in range(3):
        fake.send(bthome(SPEC_MAC, "41e445f3c9962b332211006c7c4519"))
    with pytest.raises(DriverUnavailable, match=r"not seen since hubd started.*MIC mismatch"):
        await task
    assert caplog.text.count("unreadable advertisement") == 1
    assert rec.values == []
    assert "00000000" not in caplog.text
    await driver.stop()


async def test_availability_timeout_then_restart_waits_to_hear_the_device(
    backend: tuple[FakeBackend, SharedResources], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, resources = backend
    clock = Clock()
    driver, rec, _ = make(BTHomeDriver, resources, clock, address=FRIDGE, timeout=600)
    await started(driver, fake, bthome(FRIDGE, "40 02C409"))
    timer = driver._timer
    assert timer is not None
    loop = asyncio.get_running_loop()
    assert 599 < timer.when() - loop.time() <= 600
    # Ten minutes of silence: the timer fires (run here by hand rather than waited for).
    clock.now += timedelta(minutes=12)
    timer.cancel()
    driver._expired()
    assert rec.availability == [(False, "not seen for 12 min")]
    # The supervisor stops and restarts the driver: not online until heard again.
    await driver.stop()
    assert fake.deliver is None  # the last subscriber left: scanning stopped
    monkeypatch.setattr(passive, "FIRST_SEEN_WAIT", 0.05)
    with pytest.raises(DriverUnavailable, match=r"^not seen for 12 min$"):
        await driver.start()
    await driver.stop()
    # The last value and when it was heard stay readable in the hub's cache.
    assert rec.latest("last_seen").value == clock.now - timedelta(minutes=12)  # type: ignore[union-attr]
    clock.now += timedelta(minutes=1)
    await started(driver, fake, bthome(FRIDGE, "40 02CA09"))
    assert rec.latest("temperature").value == Decimal("25.06")  # type: ignore[union-attr]
    await driver.stop()


async def test_restart_of_a_recently_heard_device_is_online_at_once(
    backend: tuple[FakeBackend, SharedResources],
) -> None:
    fake, resources = backend
    clock = Clock()
    driver, _, _ = make(BTHomeDriver, resources, clock, address=FRIDGE, timeout=600)
    await started(driver, fake, bthome(FRIDGE, "40 02C409"))
    await driver.stop()
    clock.now += timedelta(minutes=4)
    async with asyncio.timeout(1):
        await driver.start()
    # Offline when the rest of the timeout passes, six minutes from now.
    remaining = driver._timer.when() - asyncio.get_running_loop().time()
    assert 359 < remaining <= 360
    await driver.stop()


async def test_bthome_units_events_and_chosen_fields(
    backend: tuple[FakeBackend, SharedResources],
) -> None:
    fake, resources = backend
    driver, rec, _ = make(
        BTHomeDriver,
        resources,
        address=FRIDGE,
        fields=["distance", "temperature", "temperature_2", "button"],
    )
    assert [f.name for f in driver.describe().fields] == [
        "distance",
        "temperature",
        "temperature_2",
        "button",
        "rssi",
        "last_seen",
    ]
    # distance 7.8 m (object 0x41) is published in the field's unit, mm.
    await started(driver, fake, bthome(FRIDGE, "40 414E00 02CA09 02CF09 3A01 0161"))
    values = {v.name: v.value for v in rec.values}
    assert values["distance"] == Decimal("7800.0")
    assert values["temperature_2"] == Decimal("25.11")
    assert values["button"] == "press"
    assert "battery" not in values
    await driver.stop()


def test_unit_conversion_is_exact_or_refused() -> None:
    assert convert_unit(Decimal("2"), "lb", "kg") == Decimal("0.90718474")
    assert convert_unit(Decimal("250"), "mL", "L") == Decimal("0.250")
    assert convert_unit(Decimal("1"), "°C", "K") is None


async def test_pvvx_and_ruuvi(backend: tuple[FakeBackend, SharedResources]) -> None:
    fake, resources = backend
    pvvx, pvvx_rec, _ = make(PvvxDriver, resources, address="A4:C1:38:02:83:F4")
    payload = bytes.fromhex("f4830238c1a4a9066911b60b58f70d")
    advert = Advertisement(address="A4:C1:38:02:83:F4", rssi=-34, service_data={PVVX: payload})
    await started(pvvx, fake, advert)
    values = {v.name: v.value for v in pvvx_rec.values}
    assert values["temperature"] == Decimal("17.05")
    assert values["battery"] == Decimal(88)
    assert values["voltage"] == Decimal("2.998")
    assert values["reed_switch"] is True
    assert "packet_id" not in values
    count = len(pvvx_rec.values)
    fake.send(advert)  # same counter: a resend
    assert len(pvvx_rec.values) == count

    ruuvi, ruuvi_rec, _ = make(RuuviDriver, resources, address="CB:B8:33:4C:88:4F")
    data = bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")
    await started(
        ruuvi,
        fake,
        Advertisement(address="CB:B8:33:4C:88:4F", rssi=-75, manufacturer_data={0x0499: data}),
    )
    values = {v.name: v.value for v in ruuvi_rec.values}
    assert values["pressure"] == Decimal("1000.44")
    assert values["acceleration_z"] == Decimal(1036)
    assert values["rssi"] == Decimal(-75)
    await pvvx.stop()
    await ruuvi.stop()


def test_config_validation() -> None:
    config = BTHomeConfig.model_validate(
        {"id": "x", "driver": "ble.bthome", "address": "a4-c1-38-12-34-56", "bindkey": SPEC_KEY}
    )
    assert config.address == FRIDGE
    assert list(config.claims()) == [f"ble:{FRIDGE}"]
    assert SPEC_KEY not in repr(config)
    with pytest.raises(ValidationError, match="32 hex digits") as info:
        BTHomeConfig.model_validate(
            {"id": "x", "driver": "ble.bthome", "address": FRIDGE, "bindkey": "secret-key"}
        )
    # hubd's config errors show the message, never the input: the key is not echoed.
    assert all("secret-key" not in e["msg"] for e in info.value.errors())
    with pytest.raises(ValidationError, match="not BTHome field names: temprature"):
        BTHomeConfig.model_validate(
            {"id": "x", "driver": "ble.bthome", "address": FRIDGE, "fields": ["temprature"]}
        )
    with pytest.raises(ValidationError, match="not a Bluetooth address"):
        PvvxConfig.model_validate({"id": "x", "driver": "ble.xiaomi_pvvx", "address": "x"})
    with pytest.raises(ValidationError, match="greater than or equal to 10"):
        RuuviConfig.model_validate(
            {"id": "x", "driver": "ble.ruuvi", "address": FRIDGE, "timeout": 1}
        )
