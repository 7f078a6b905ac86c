"""A bus's libraries are imported only when a device of that bus is configured.

Each case runs what ``hubd run`` runs up to the running hub (config loaded and
validated, every device's driver built by the composition root) in a fresh
interpreter, and looks at what it imported: bleak and dbus-fast cost memory a
GPIO-only Pi must not pay, pyserial is for serial devices only, and so on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hubd.core.registry import DriverRegistry

BUS_LIBRARIES = ("bleak", "dbus_fast", "serial", "serial_asyncio_fast", "gpiozero", "cryptography")

PROBE = """\
import asyncio, json, sys
from pathlib import Path
from hubd.service.app import App
from hubd.core.config import load_config

async def main() -> None:
    App(load_config(Path(sys.argv[1])))

asyncio.run(main())
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def imported_by_a_hub(tmp_path: Path, devices: str) -> set[str]:
    (tmp_path / "pw").write_text("secret\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "gpio: {pin_factory: mock}\n"
        f"devices:\n{devices}"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1])) & set(BUS_LIBRARIES)


@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ("  - {id: t1, driver: gpio.onewire, sensor_id: 28-000000000001}\n", set()),
        ("  - {id: cpu, driver: system}\n", set()),
        (
            "  - {id: probe, driver: serial.lines, port: /dev/ttyUSB0, format: json,\n"
            "     fields: {v: {type: numeric}}}\n",
            {"serial", "serial_asyncio_fast"},
        ),
        # gpiozero comes with the pin factory, when the first GPIO device starts.
        ("  - {id: lamp, driver: gpio.output, pin: 4}\n", set()),
        # No BLE backend before the scanner starts; no cryptography without a bindkey.
        ("  - {id: th, driver: ble.bthome, address: 'A4:C1:38:00:00:01'}\n", set()),
    ],
    ids=["onewire", "system", "serial", "gpio", "bthome"],
)
def test_only_the_configured_bus_is_imported(
    tmp_path: Path, devices: str, expected: set[str]
) -> None:
    assert imported_by_a_hub(tmp_path, devices) == expected


def test_kinds_lists_every_driver_without_importing_one() -> None:
    registry = DriverRegistry()
    kinds = registry.kinds()
    assert {"gpio.output", "serial.lines", "ble.bthome", "system"} <= set(kinds)
    assert registry._loaded == {}
