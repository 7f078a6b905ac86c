"""The radio backend: one ``BleakScanner`` on one BlueZ adapter.

Imported only when a BLE device is configured without ``ble.replay``, so a
GPIO-only Pi never loads bleak.  bleak's errors are translated here, at the
edge, into one short sentence a person can act on:

* no D-Bus system bus at all: bleak raises a bare ``FileNotFoundError``;
* a bus without BlueZ: ``BleakDBusError`` ``org.freedesktop.DBus.Error.ServiceUnknown``;
* no such adapter, Bluetooth powered off or blocked: ``BleakError``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from .advertisement import Advertisement
from .scan_backend import AdvertCallback, BackendUnavailable

__all__ = ["BleakBackend", "describe_bleak_error", "to_advertisement"]

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT: Final = 10.0
STOP_TIMEOUT: Final = 5.0
_SERVICE_UNKNOWN: Final = "org.freedesktop.DBus.Error.ServiceUnknown"


def describe_bleak_error(err: Exception, adapter: str) -> str:
    """One sentence saying why Bluetooth LE cannot be used, for a log line and a node's state."""
    if isinstance(err, FileNotFoundError):
        return "no D-Bus system bus (is dbus running?): Bluetooth needs D-Bus and BlueZ"
    if isinstance(err, BleakDBusError):
        if err.dbus_error == _SERVICE_UNKNOWN:
            return (
                "BlueZ is not running (no org.bluez on the D-Bus system bus): "
                "install bluez and start bluetooth.service"
            )
        return f"BlueZ refused on {adapter}: {err}"
    if isinstance(err, PermissionError):
        return f"no permission to use the D-Bus system bus: {err} (add hubd to group bluetooth)"
    if isinstance(err, TimeoutError):
        return f"BlueZ did not answer within {START_TIMEOUT:g} s"
    text = str(err) or type(err).__name__
    return f"Bluetooth adapter {adapter}: {text}"


def to_advertisement(device: BLEDevice, data: AdvertisementData) -> Advertisement:
    """Copy what bleak reports into hubd's own, bleak-free value."""
    return Advertisement(
        address=device.address.upper(),
        rssi=data.rssi,
        name=data.local_name or device.name,
        service_uuids=tuple(data.service_uuids),
        service_data=dict(data.service_data),
        manufacturer_data=dict(data.manufacturer_data),
        device=device,
    )


class BleakBackend:
    """Scans with bleak on a BlueZ adapter (active scanning, as BlueZ needs no patterns for it)."""

    def __init__(self, adapter: str) -> None:
        self.adapter = adapter
        self.label = adapter
        self._scanner: BleakScanner | None = None

    async def start(self, deliver: AdvertCallback) -> None:
        """Start scanning; bleak calls back on the event loop."""

        def on_detect(device: BLEDevice, data: AdvertisementData) -> None:
            deliver(to_advertisement(device, data))

        scanner = BleakScanner(on_detect, bluez={"adapter": self.adapter})
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await scanner.start()
        except (OSError, BleakError, TimeoutError) as err:
            _LOGGER.debug("starting the scanner on %s failed: %r", self.adapter, err)
            raise BackendUnavailable(describe_bleak_error(err, self.adapter)) from err
        self._scanner = scanner

    async def stop(self) -> None:
        """Stop scanning; an adapter that went away meanwhile is not an error."""
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await scanner.stop()
        except (OSError, BleakError, TimeoutError) as err:
            _LOGGER.debug("stopping the scanner on %s: %r", self.adapter, err)
