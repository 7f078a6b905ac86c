"""A mocked BlueZ on a private D-Bus: python-dbusmock's bluez5 template, driven over D-Bus.

bleak's real BlueZ backend talks to it exactly as to bluetoothd: the tests
point ``DBUS_SYSTEM_BUS_ADDRESS`` at a private ``dbus-daemon`` on which
``python -m dbusmock --system --template bluez5`` owns ``org.bluez``.  The
test then plays the radio: it adds an adapter and devices, makes them
"advertise" (``UpdateProperties`` of RSSI, ServiceData, ManufacturerData
while a scan runs) and gives them GATT services whose methods are small
code strings run inside the mock.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dbus
import dbus.bus

BLUEZ = "org.bluez"
MOCK_IFACE = "org.bluez.Mock"
DBUSMOCK_IFACE = "org.freedesktop.DBus.Mock"
ADAPTER_IFACE = "org.bluez.Adapter1"
DEVICE_IFACE = "org.bluez.Device1"
SERVICE_IFACE = "org.bluez.GattService1"
CHAR_IFACE = "org.bluez.GattCharacteristic1"
OBJECT_MANAGER_IFACE = "org.freedesktop.DBus.ObjectManager"

START_TIMEOUT = 10.0


def _wait(condition: Any, what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll a cheap condition until true; a bounded wait, for process start-up only."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(0.02)


class PrivateBus:
    """A ``dbus-daemon`` of our own on a socket in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.socket = workdir / "bus.sock"
        self.address = f"unix:path={self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["dbus-daemon", "--session", f"--address={self.address}", "--nofork", "--nopidfile"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The socket file exists a moment before the daemon accepts on it.
            _wait(self._accepts, "dbus-daemon did not listen")
        except BaseException:
            self.stop()
            raise

    def _accepts(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.socket))
            except OSError:
                return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class BluezMock:
    """The bluez5 template on a private bus, with helpers to play adapters and devices."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.bus = PrivateBus(workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: dbus.bus.BusConnection | None = None
        self.log = workdir / "dbusmock.log"

    @property
    def address(self) -> str:
        return self.bus.address

    def start(self, *, bluez: bool = True) -> None:
        """Start the bus and (unless ``bluez`` is false) the mocked BlueZ on it.

        A failed start stops what it started: no process outlives the test.
        """
        try:
            self._start(bluez)
        except BaseException:
            self.stop()
            raise

    def _start(self, bluez: bool) -> None:
        self.bus.start()
        self.conn = dbus.bus.BusConnection(self.address)
        if not bluez:
            return
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dbusmock", "--system", "--template", "bluez5"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        conn = self.conn
        _wait(lambda: conn.name_has_owner(BLUEZ), "the mocked BlueZ did not appear")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.bus.stop()

    def _obj(self, path: str) -> Any:
        assert self.conn is not None
        return self.conn.get_object(BLUEZ, path)

    def add_adapter(self, name: str = "hci0") -> str:
        return str(self._obj("/").AddAdapter(name, "hubd-test", dbus_interface=MOCK_IFACE))

    def add_device(self, address: str, name: str, adapter: str = "hci0") -> str:
        """Add a device, with ManufacturerData/ServiceData as dicts (the template's crash bleak)."""
        path = str(self._obj("/").AddDevice(adapter, address, name, dbus_interface=MOCK_IFACE))
        self.update(
            path,
            DEVICE_IFACE,
            {
                "ManufacturerData": dbus.Dictionary({}, signature="qv"),
                "ServiceData": dbus.Dictionary({}, signature="sv"),
            },
        )
        return path

    def update(self, path: str, interface: str, props: dict[str, Any]) -> None:
        self._obj(path).UpdateProperties(interface, props, dbus_interface=DBUSMOCK_IFACE)

    def get(self, path: str, interface: str, name: str) -> Any:
        return self._obj(path).Get(
            interface, name, dbus_interface="org.freedesktop.DBus.Properties"
        )

    def advertise(
        self,
        path: str,
        *,
        rssi: int = -60,
        service_data: dict[str, bytes] | None = None,
        manufacturer_data: dict[int, bytes] | None = None,
    ) -> None:
        """One advertisement as BlueZ reports it: changed properties of the device."""
        props: dict[str, Any] = {"RSSI": dbus.Int16(rssi)}
        if service_data is not None:
            props["ServiceData"] = dbus.Dictionary(
                {k: dbus.Array(v, signature="y") for k, v in service_data.items()}, signature="sv"
            )
            props["UUIDs"] = dbus.Array(list(service_data), signature="s")
        if manufacturer_data is not None:
            props["ManufacturerData"] = dbus.Dictionary(
                {
                    dbus.UInt16(k): dbus.Array(v, signature="y")
                    for k, v in manufacturer_data.items()
                },
                signature="qv",
            )
        self.update(path, DEVICE_IFACE, props)

    def make_connectable(self, device_path: str) -> None:
        """Connect/Disconnect that also resolve services (bleak waits for ServicesResolved)."""
        obj = self._obj(device_path)
        for name, state in (("Connect", True), ("Disconnect", False)):
            flag = "dbus.Boolean(True)" if state else "dbus.Boolean(False)"
            code = (
                f"self.UpdateProperties('{DEVICE_IFACE}', "
                f"{{'Connected': {flag}, 'ServicesResolved': {flag}}})"
            )
            obj.AddMethod(DEVICE_IFACE, name, "", "", code, dbus_interface=DBUSMOCK_IFACE)

    def add_service(self, device_path: str, uuid: str, handle: int) -> str:
        path = f"{device_path}/service{handle:04x}"
        props = {
            "UUID": dbus.String(uuid),
            "Device": dbus.ObjectPath(device_path),
            "Primary": dbus.Boolean(True),
            "Includes": dbus.Array([], signature="o"),
        }
        self._obj("/").AddObject(path, SERVICE_IFACE, props, [], dbus_interface=DBUSMOCK_IFACE)
        self._announce(path, SERVICE_IFACE, props)
        return path

    def add_characteristic(
        self, service_path: str, uuid: str, handle: int, value: bytes, flags: list[str]
    ) -> str:
        """A characteristic whose ReadValue returns Value and WriteValue stores into it."""
        path = f"{service_path}/char{handle:04x}"
        props = {
            "UUID": dbus.String(uuid),
            "Service": dbus.ObjectPath(service_path),
            "Value": dbus.Array(value, signature="y"),
            "Flags": dbus.Array(flags, signature="s"),
            "Notifying": dbus.Boolean(False),
            "MTU": dbus.UInt16(23),
        }
        methods = [
            ("ReadValue", "a{sv}", "ay", f"ret = self.Get('{CHAR_IFACE}', 'Value')"),
            (
                "WriteValue",
                "aya{sv}",
                "",
                f"self.props['{CHAR_IFACE}']['Value'] = dbus.Array(args[0], signature='y')",
            ),
            (
                "StartNotify",
                "",
                "",
                f"self.UpdateProperties('{CHAR_IFACE}', {{'Notifying': dbus.Boolean(True)}})",
            ),
            (
                "StopNotify",
                "",
                "",
                f"self.UpdateProperties('{CHAR_IFACE}', {{'Notifying': dbus.Boolean(False)}})",
            ),
        ]
        self._obj("/").AddObject(path, CHAR_IFACE, props, methods, dbus_interface=DBUSMOCK_IFACE)
        self._announce(path, CHAR_IFACE, props)
        return path

    def notify(self, char_path: str, value: bytes) -> None:
        """The device notifies a new value (BlueZ: the Value property changes)."""
        self.update(char_path, CHAR_IFACE, {"Value": dbus.Array(value, signature="y")})

    def value(self, char_path: str) -> bytes:
        return bytes(self.get(char_path, CHAR_IFACE, "Value"))

    def disconnect_from_device_side(self, device_path: str) -> None:
        self.update(
            device_path,
            DEVICE_IFACE,
            {"Connected": dbus.Boolean(False), "ServicesResolved": dbus.Boolean(False)},
        )

    def _announce(self, path: str, interface: str, props: dict[str, Any]) -> None:
        # AddObject does not emit InterfacesAdded on an ObjectManager: do it, as BlueZ does.
        self._obj("/").EmitSignal(
            OBJECT_MANAGER_IFACE,
            "InterfacesAdded",
            "oa{sa{sv}}",
            [dbus.ObjectPath(path), dbus.Dictionary({interface: props}, signature="sa{sv}")],
            dbus_interface=DBUSMOCK_IFACE,
        )
