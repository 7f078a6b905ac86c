"""The ``hubd`` command line as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def hubd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args], capture_output=True, text=True, timeout=60
    )


def test_check_accepts_a_good_config(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        "gpio: {pin_factory: mock}\n"
        "devices:\n  - {id: lamp, driver: gpio.output, pin: 4}\n"
    )
    result = hubd("check", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "OK (1 devices, account hub@example.org)" in result.stdout
    assert "secret" not in result.stdout + result.stderr


def test_check_lists_every_problem_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "xmpp:\n  jid: hub@example.org\n  password_file: missing\n"
        "devices:\n  - id: lamp\n    driver: gpio.output\n    pin: 99\n"
        "  - id: lamp\n    driver: gpio.output\n    pin: 4\n    colour: red\n"
    )
    result = hubd("check", "-c", str(config))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"{config}: 3 problems:"
    assert f"{config}:3: xmpp.password_file: password file" in lines[1]
    assert f"{config}:7: devices[0] (lamp): pin: " in lines[2]
    assert f"{config}:11: devices[1] (lamp): colour: unknown key" in lines[3]


def test_run_refuses_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("xmpp: [not, a, mapping]\n")
    result = hubd("run", "-c", str(config))
    assert result.returncode == 78
    assert "refusing to start" in result.stderr
    assert f"{config}:1: xmpp: " in result.stderr
    assert "Traceback" not in result.stderr


def test_drivers_lists_options_and_fields() -> None:
    result = hubd("drivers")
    assert result.returncode == 0
    assert "gpio.output" in result.stdout
    assert "    pin (int, required): BCM pin number" in result.stdout
    assert "    state: boolean, writable" in result.stdout


def test_every_registered_driver_loads_with_its_declared_kind() -> None:
    from hubd.core.registry import DriverRegistry

    registry = DriverRegistry()
    assert {"gpio.input", "gpio.output"} <= set(registry.kinds())
    for kind in registry.kinds():
        assert registry.load(kind).kind == kind
