"""scripts/install-pi.sh as a user runs it, on an emulated arm64 Debian 12 and Debian 13.

Each release gets a fresh minimal arm64 root (see arm64_root.py) with this
checkout in /home/pi/hubd; the script runs there as root without a terminal,
with the answers in HUBD_JID / HUBD_PASSWORD / HUBD_OWNER, as a scripted
install would.  Plain Debian has neither Raspberry Pi OS's python3-lgpio nor a
running systemd, so this also checks both fallbacks: lgpio from PyPI, and an
installed but not started service.  Then the installed hubd is checked under
emulation: ``hubd check`` (the config the script wrote, read as the hubd user
with the password as a systemd credential; and config.example.yaml on simulated
hardware) and ``hubd drivers``.  Run by ``./dev check-arm64`` only.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from arm64_root import SUITES, Arm64Root, need_root_tools

# A cold check (debootstrap of both releases, every download) takes minutes under
# emulation; a warm one reuses the cached roots and downloads.
pytestmark = pytest.mark.timeout(3600)

CHECKOUT = Path(__file__).resolve().parents[2]
INSIDE = "/home/pi/hubd"
PASSWORD = "arm64-check-password"
ANSWERS = {"HUBD_JID": "hub@example.org", "HUBD_PASSWORD": PASSWORD, "HUBD_OWNER": "me@example.org"}
VENV = "/opt/hubd/venv"
# hubd as systemd starts it: user hubd, the password as the credential xmpp-password.
AS_SERVICE = (
    "creds=$(mktemp -d) && chown hubd $creds"
    " && install -m 0400 -o hubd /etc/hubd/xmpp.password $creds/xmpp-password"
    " && runuser -u hubd -- env CREDENTIALS_DIRECTORY=$creds " + VENV + "/bin/hubd"
)


@dataclass
class Install:
    root: Arm64Root
    output: str  # the script's stdout and stderr

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        return self.root.run(command)


def transcript(result: subprocess.CompletedProcess[str]) -> str:
    output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return f"exit status {result.returncode}\n{output}"


@pytest.fixture(scope="module", params=SUITES)
def install(request: pytest.FixtureRequest) -> Iterator[Install]:
    need_root_tools()
    suite = request.param
    if os.environ.get("HUBD_ARM64_REUSE") == "1" and (kept := Arm64Root.kept(suite)):
        # Working on these tests: the last check's installed root, not a new install.
        yield Install(kept, (kept.run_dir / "install-pi.out").read_text())
        return
    root = Arm64Root.fresh(suite)
    root.copy_checkout(CHECKOUT, INSIDE)
    started = time.monotonic()
    result = root.run(f"cd {INSIDE} && scripts/install-pi.sh", env=ANSWERS)
    seconds = time.monotonic() - started
    log = root.run_dir / "install-pi.log"
    log.write_text(f"install-pi.sh on arm64 {suite}: {seconds:.0f} s, {transcript(result)}")
    if result.returncode != 0:
        pytest.fail(f"install-pi.sh failed on arm64 {suite} (log: {log}):\n{transcript(result)}")
    (root.run_dir / "install-pi.out").write_text(result.stdout + result.stderr)
    yield Install(root, result.stdout + result.stderr)


def test_runs_on_emulated_arm64_of_that_release(install: Install) -> None:
    result = install.run(
        ". /etc/os-release && echo $VERSION_CODENAME $(uname -m)"
        f" $({VENV}/bin/python -c 'import platform; print(platform.machine())')"
    )
    assert result.returncode == 0, transcript(result)
    assert result.stdout.split() == [install.root.suite, "aarch64", "aarch64"]


def test_lgpio_comes_from_pypi_without_python3_lgpio_and_the_script_says_so(
    install: Install,
) -> None:
    archive = install.run("apt-cache madison python3-lgpio")
    assert archive.returncode == 0, transcript(archive)
    assert archive.stdout == "", "this Debian has python3-lgpio now: the fallback is not tested"
    assert "python3-lgpio is not in this system's package archive" in install.output
    wheel = "lgpio" if install.root.suite == "bookworm" else "adafruit-lgpio"  # 3.11 / 3.13
    assert f"installing {wheel} 0.2.2.0 from PyPI into {VENV}" in install.output
    # gpiozero's lgpio pin factory imports; opening it needs a /dev/gpiochip (none here).
    result = install.run(
        f"{VENV}/bin/python -c 'import lgpio, gpiozero.pins.lgpio; print(lgpio.__file__)'"
    )
    assert result.returncode == 0, transcript(result)
    assert result.stdout.startswith(f"{VENV}/lib/python3.")


def test_without_systemd_it_installs_the_unit_and_says_what_it_would_start(
    install: Install,
) -> None:
    assert "systemd is not running here" in install.output
    assert "systemctl restart hubd" in install.output
    unit = install.run("cat /etc/systemd/system/hubd.service")
    assert unit.returncode == 0, transcript(unit)
    assert unit.stdout == (CHECKOUT / "systemd" / "hubd.service").read_text()
    assert PASSWORD not in install.output


def test_the_service_user_and_the_password_file(install: Install) -> None:
    result = install.run("id -nG hubd && stat -c '%a %U' /etc/hubd/xmpp.password")
    assert result.returncode == 0, transcript(result)
    groups, mode = result.stdout.splitlines()
    assert {"hubd", "gpio", "dialout", "bluetooth"} <= set(groups.split())
    assert mode == "600 root"


def test_hubd_check_accepts_the_written_config_as_the_service_reads_it(install: Install) -> None:
    result = install.run(f"{AS_SERVICE} check -c /etc/hubd/config.yaml")
    assert result.returncode == 0, transcript(result)
    assert "/etc/hubd/config.yaml: OK (1 devices, account hub@example.org)" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_hubd_check_accepts_the_example_config_on_simulated_hardware(install: Install) -> None:
    result = install.run(
        "sed -e 's/pin_factory: lgpio/pin_factory: mock/'"
        " -e 's#/etc/hubd/xmpp.password#/tmp/xmpp.password#'"
        " /etc/hubd/config.example.yaml >/tmp/example.yaml"
        " && printf pw >/tmp/xmpp.password"
        f" && {VENV}/bin/hubd check -c /tmp/example.yaml"
    )
    assert result.returncode == 0, transcript(result)
    assert "/tmp/example.yaml: OK (" in result.stdout


def test_hubd_drivers_lists_gpio_serial_and_ble(install: Install) -> None:
    result = install.run(f"{VENV}/bin/hubd drivers")
    assert result.returncode == 0, transcript(result)
    kinds = {line for line in result.stdout.splitlines() if line and not line.startswith(" ")}
    assert {"gpio.input", "gpio.output", "serial.lines", "ble.bthome", "system"} <= kinds
    assert "broken:" not in result.stdout


def test_a_missing_source_is_refused_and_the_install_stays(install: Install) -> None:
    result = install.run(f"cd {INSIDE} && scripts/install-pi.sh /home/pi/hubd-9.9.9.whl")
    assert result.returncode == 1
    assert "install-pi: /home/pi/hubd-9.9.9.whl does not exist" in result.stderr
    assert install.run(f"{AS_SERVICE} check -c /etc/hubd/config.yaml").returncode == 0


def test_a_second_run_upgrades_and_keeps_the_configuration(install: Install) -> None:
    before = install.run("sha256sum /etc/hubd/config.yaml /etc/hubd/xmpp.password")
    # No answers and no terminal: a second run must not need them.
    result = install.root.run(f"cd {INSIDE} && scripts/install-pi.sh")
    assert result.returncode == 0, transcript(result)
    assert "writing /etc/hubd/config.yaml" not in result.stdout
    after = install.run("sha256sum /etc/hubd/config.yaml /etc/hubd/xmpp.password")
    assert after.stdout == before.stdout != ""
