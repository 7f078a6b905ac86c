"""bleak's real BlueZ backend against a mocked BlueZ (python-dbusmock) on a private D-Bus.

Nothing in hubd is faked here: the drivers use the shared scanner, which runs
a real ``BleakScanner``, and ``ble.gatt`` connects with bleak-retry-connector
and a real ``BleakClient``; only bluetoothd is played by python-dbusmock's
bluez5 template (see ``bluez_mock.py``).
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from bluez_mock import ADAPTER_IFACE, BluezMock, PrivateBus

from drivers.ble.advertisement import decode_line
from drivers.ble.bthome_driver import BTHomeConfig, BTHomeDriver
from drivers.ble.gatt import ConnectionSlots, GattConfig, GattDriver
from drivers.ble.pvvx_driver import PvvxConfig, PvvxDriver
from drivers.ble.record import record
from drivers.ble.ruuvi_driver import RuuviConfig, RuuviDriver
from hubd.core.driver import DriverContext
from hubd.core.resources import SharedResources
from hubd.core.settings import BleSettings, BusSettings
from hubd.errors import DriverUnavailable, InvalidValue
from hubd.testing.drivers import Recorder, make_context

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
PVVX = "0000181a-0000-1000-8000-00805f9b34fb"
RUUVI = 0x0499
SENSOR_SERVICE = "0000181a-0000-1000-8000-00805f9b34fb"
TEMPERATURE = "00002a6e-0000-1000-8000-00805f9b34fb"
SETPOINT = "12345678-1234-5678-1234-56789abcdef0"
NAME = "00002a00-0000-1000-8000-00805f9b34fb"

# Real payloads of the parser tests (test_bthome.py, test_pvvx.py, test_ruuvi.py).
BTHOME_PAYLOAD = bytes.fromhex("40015c020a0903bf13")  # battery 92, 23.14 °C, 50.55 %
ENCRYPTED_PAYLOAD = bytes.fromhex("41e445f3c9962b332211006c7c4519")  # 25.06 °C, 50.55 %
SPEC_KEY = "231d39c1d7cc1ab1aee224cd096db932"
PVVX_PAYLOAD = bytes.fromhex("f4830238c1a4a9066911b60b58f70d")  # 17.05 °C
RUUVI_PAYLOAD = bytes.fromhex("0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F")  # 24.3 °C

GATT_ADDRESS = "C0:FF:EE:00:00:01"


@pytest.fixture
def bluez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BluezMock]:
    """A mocked BlueZ with adapter hci0, the system bus of this test."""
    mock = BluezMock(tmp_path / "bluez")
    mock.start()
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", mock.address)
    try:
        mock.add_adapter("hci0")
        yield mock
    finally:
        mock.stop()


@pytest.fixture
async def resources() -> AsyncIterator[SharedResources]:
    shared = SharedResources()
    yield shared
    await shared.close_all()


def context(node_id: str, resources: SharedResources) -> tuple[DriverContext, Recorder]:
    return make_context(node_id, settings=BusSettings(ble=BleSettings()), resources=resources)


async def start_while_advertising(
    starts: list[asyncio.Task[None]], advertise: Callable[[], None]
) -> None:
    """Advertise until every start() returned: a device is heard only while a scan runs."""
    async with asyncio.timeout(10):
        while not all(task.done() for task in starts):
            advertise()
            await asyncio.wait(starts, timeout=0.1, return_when=asyncio.ALL_COMPLETED)
    for task in starts:
        await task


def discovering(bluez: BluezMock) -> bool:
    return bool(bluez.get("/org/bluez/hci0", ADAPTER_IFACE, "Discovering"))


# -- passive drivers -------------------------------------------------------------------


async def test_advertisements_reach_the_passive_drivers_through_one_scanner(
    bluez: BluezMock, resources: SharedResources
) -> None:
    plain = bluez.add_device("A4:C1:38:12:34:56", "ATC_123456")
    secure = bluez.add_device("54:48:E6:8F:80:A5", "SBHT-003C")
    pvvx = bluez.add_device("A4:C1:38:02:83:F4", "ATC_0283F4")
    ruuvi = bluez.add_device("CB:B8:33:4C:88:4F", "Ruuvi 884F")
    drivers = []
    recorders = []
    for config_cls, driver_cls, node, extra in (
        (BTHomeConfig, BTHomeDriver, "fridge", {"address": "a4:c1:38:12:34:56"}),
        (
            BTHomeConfig,
            BTHomeDriver,
            "secure",
            {"address": "54:48:E6:8F:80:A5", "bindkey": SPEC_KEY},
        ),
        (PvvxConfig, PvvxDriver, "cellar", {"address": "A4:C1:38:02:83:F4"}),
        (RuuviConfig, RuuviDriver, "garden", {"address": "CB:B8:33:4C:88:4F"}),
    ):
        ctx, rec = context(node, resources)
        config = config_cls.model_validate({"id": node, "driver": driver_cls.kind, **extra})
        drivers.append(driver_cls(config, ctx))  # type: ignore[abstract]
        recorders.append(rec)

    def advertise() -> None:
        bluez.advertise(plain, rssi=-61, service_data={BTHOME: BTHOME_PAYLOAD})
        bluez.advertise(secure, rssi=-70, service_data={BTHOME: ENCRYPTED_PAYLOAD})
        bluez.advertise(pvvx, rssi=-34, service_data={PVVX: PVVX_PAYLOAD})
        bluez.advertise(ruuvi, rssi=-75, manufacturer_data={RUUVI: RUUVI_PAYLOAD})

    await start_while_advertising([asyncio.create_task(d.start()) for d in drivers], advertise)

    fridge, secure_rec, cellar, garden = recorders
    assert fridge.latest("temperature").value == Decimal("23.14")  # type: ignore[union-attr]
    assert fridge.latest("battery").value == Decimal(92)  # type: ignore[union-attr]
    assert fridge.latest("rssi").value == Decimal(-61)  # type: ignore[union-attr]
    assert fridge.latest("last_seen") is not None
    assert secure_rec.latest("temperature").value == Decimal("25.06")  # type: ignore[union-attr]
    assert cellar.latest("temperature").value == Decimal("17.05")  # type: ignore[union-attr]
    assert cellar.latest("reed_switch").value is True  # type: ignore[union-attr]
    assert garden.latest("pressure").value == Decimal("1000.44")  # type: ignore[union-attr]

    # One scanner, one discovery on the adapter; stopped with its last subscriber.
    scanners = [key for key in resources._items if key.startswith("ble.scanner")]
    assert scanners == ["ble.scanner:hci0"]
    assert discovering(bluez)
    for driver in drivers:
        await driver.stop()
    assert not discovering(bluez)


# -- ble.gatt --------------------------------------------------------------------------


def gatt_device(bluez: BluezMock) -> tuple[str, str, str, str]:
    dev = bluez.add_device(GATT_ADDRESS, "Thermostat")
    bluez.make_connectable(dev)
    svc = bluez.add_service(dev, SENSOR_SERVICE, 0x000C)
    temp = bluez.add_characteristic(
        svc, TEMPERATURE, 0x000D, bytes.fromhex("2a09"), ["read", "notify"]
    )
    setpoint = bluez.add_characteristic(svc, SETPOINT, 0x0010, bytes([200]), ["read", "write"])
    name = bluez.add_characteristic(svc, NAME, 0x0012, b"Hall\0", ["read"])
    return dev, temp, setpoint, name


GATT_CONFIG = {
    "id": "thermostat",
    "driver": "ble.gatt",
    "address": GATT_ADDRESS,
    "characteristics": [
        {
            "field": "temperature",
            "uuid": "2a6e",
            "format": "int16",
            "scale": "0.01",
            "unit": "°C",
            "notify": True,
        },
        {
            "field": "setpoint",
            "uuid": SETPOINT,
            "format": "uint8",
            "scale": "0.1",
            "unit": "°C",
            "write": True,
        },
        {"field": "label", "uuid": "2A00", "format": "utf8"},
    ],
}


async def test_gatt_connects_reads_receives_notifications_and_writes(
    bluez: BluezMock, resources: SharedResources
) -> None:
    dev, temp, setpoint, _ = gatt_device(bluez)
    ctx, rec = context("thermostat", resources)
    driver = GattDriver(GattConfig.model_validate(GATT_CONFIG), ctx)
    spec = driver.describe()
    assert spec.get("setpoint").writable  # type: ignore[union-attr]
    assert spec.get("setpoint").maximum == Decimal("25.5")  # type: ignore[union-attr]

    await start_while_advertising(
        [asyncio.create_task(driver.start())], lambda: bluez.advertise(dev, rssi=-55)
    )
    # Read once at connect.
    assert {v.name: v.value for v in rec.values} == {
        "temperature": Decimal("23.46"),
        "setpoint": Decimal("20.0"),
        "label": "Hall",
    }
    assert bool(bluez.get(dev, "org.bluez.Device1", "Connected"))

    # A notification is published.
    bluez.notify(temp, bytes.fromhex("3c0a"))
    await rec.wait_for(4)
    assert rec.latest("temperature").value == Decimal("26.20")  # type: ignore[union-attr]

    # A write reaches the characteristic, scaled, and is published.
    await driver.write("setpoint", Decimal("21.5"))
    assert bluez.value(setpoint) == bytes([215])
    assert rec.latest("setpoint").value == Decimal("21.5")  # type: ignore[union-attr]
    with pytest.raises(InvalidValue):
        await driver.write("setpoint", Decimal("21.55"))

    # A readout reads the readable characteristics again.
    values = {v.name: v.value for v in await driver.read(frozenset({"setpoint"}))}
    assert values == {"setpoint": Decimal("21.5")}

    await driver.stop()
    assert not bool(bluez.get(dev, "org.bluez.Device1", "Connected"))
    assert rec.availability == []


async def test_gatt_lost_connection_makes_the_node_offline(
    bluez: BluezMock, resources: SharedResources
) -> None:
    dev, *_ = gatt_device(bluez)
    ctx, rec = context("thermostat", resources)
    driver = GattDriver(GattConfig.model_validate(GATT_CONFIG), ctx)
    await start_while_advertising(
        [asyncio.create_task(driver.start())], lambda: bluez.advertise(dev)
    )
    lost = asyncio.Event()

    class Watch(list[tuple[bool, str | None]]):
        # The recorder's set_available appends here: wake the test up when it does.
        def append(self, item: tuple[bool, str | None]) -> None:
            super().append(item)
            lost.set()

    rec.availability = Watch(rec.availability)
    bluez.disconnect_from_device_side(dev)
    async with asyncio.timeout(5):
        await lost.wait()
    assert rec.availability == [(False, "disconnected")]
    await driver.stop()


async def test_gatt_with_every_connection_slot_taken_stays_offline(
    bluez: BluezMock, resources: SharedResources
) -> None:
    dev, *_ = gatt_device(bluez)
    resources.get_or_create("ble.slots:hci0", lambda: ConnectionSlots(capacity=0))
    ctx, _ = context("thermostat", resources)
    driver = GattDriver(GattConfig.model_validate(GATT_CONFIG), ctx)
    task = asyncio.create_task(driver.start())
    with pytest.raises(DriverUnavailable, match="all 0 connection slots of hci0 are in use"):
        await start_while_advertising([task], lambda: bluez.advertise(dev))
    await driver.stop()


# -- no Bluetooth ----------------------------------------------------------------------


async def start_two_bthome_nodes(
    resources: SharedResources,
) -> list[BaseException | None]:
    drivers = []
    for node, address in (("one", "A4:C1:38:00:00:01"), ("two", "A4:C1:38:00:00:02")):
        ctx, _ = context(node, resources)
        config = BTHomeConfig.model_validate(
            {"id": node, "driver": "ble.bthome", "address": address}
        )
        drivers.append(BTHomeDriver(config, ctx))
    results = await asyncio.gather(*(d.start() for d in drivers), return_exceptions=True)
    for driver in drivers:
        await driver.stop()
    return [r if isinstance(r, BaseException) else None for r in results]


def unavailable_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if "Bluetooth LE is unavailable" in r.getMessage()
    ]


async def test_no_dbus_at_all_makes_ble_nodes_offline_with_one_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    resources: SharedResources,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    caplog.set_level(logging.WARNING)
    errors = await start_two_bthome_nodes(resources)
    assert all(isinstance(e, DriverUnavailable) for e in errors)
    assert {str(e) for e in errors} == {
        "no D-Bus system bus (is dbus running?): Bluetooth needs D-Bus and BlueZ"
    }
    assert len(unavailable_logs(caplog)) == 1


async def test_a_bus_without_bluez_makes_ble_nodes_offline_with_one_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    resources: SharedResources,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = PrivateBus(tmp_path)
    bus.start()
    try:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        caplog.set_level(logging.WARNING)
        errors = await start_two_bthome_nodes(resources)
    finally:
        bus.stop()
    assert {str(e) for e in errors} == {
        "BlueZ is not running (no org.bluez on the D-Bus system bus): "
        "install bluez and start bluetooth.service"
    }
    assert len(unavailable_logs(caplog)) == 1


async def test_a_missing_adapter_is_named(
    bluez: BluezMock, resources: SharedResources, caplog: pytest.LogCaptureFixture
) -> None:
    ctx, _ = make_context(
        "one", settings=BusSettings(ble=BleSettings(adapter="hci7")), resources=resources
    )
    config = BTHomeConfig.model_validate(
        {"id": "one", "driver": "ble.bthome", "address": "A4:C1:38:00:00:01"}
    )
    driver = BTHomeDriver(config, ctx)
    with pytest.raises(DriverUnavailable, match="hci7"):
        await driver.start()
    await driver.stop()


# -- the recorder ----------------------------------------------------------------------


async def test_recorder_writes_the_replay_format(bluez: BluezMock) -> None:
    plain = bluez.add_device("A4:C1:38:12:34:56", "ATC_123456")
    other = bluez.add_device("A4:C1:38:99:99:99", "other")
    out = io.StringIO()
    started = asyncio.Event()
    task = asyncio.create_task(
        record(out, count=2, addresses=frozenset({"A4:C1:38:12:34:56"}), started=started)
    )
    async with asyncio.timeout(10):
        await started.wait()
    async with asyncio.timeout(10):
        while not task.done():
            bluez.advertise(other, service_data={BTHOME: b"\x40"})
            bluez.advertise(plain, rssi=-61, service_data={BTHOME: BTHOME_PAYLOAD})
            await asyncio.wait({task}, timeout=0.1)
    assert await task == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    t, advert = decode_line(lines[0])
    assert t >= 0
    assert advert.address == "A4:C1:38:12:34:56"
    assert advert.rssi == -61
    assert advert.name == "ATC_123456"
    assert advert.service_data == {BTHOME: BTHOME_PAYLOAD}
