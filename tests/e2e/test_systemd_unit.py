"""hubd under systemd: the notify protocol as a fake NOTIFY_SOCKET sees it, and the unit file.

No systemd runs here as PID 1, so the test plays systemd's part: it binds the
notify socket, passes ``NOTIFY_SOCKET`` and ``WATCHDOG_USEC`` to a real
``hubd run``, and reads the datagrams.  The unit file is checked with
``systemd-analyze verify`` (on a copy whose ExecStart points at this venv's
``hubd``: verify insists that the binary exists) and ``systemd-analyze
security --offline=yes``.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hubd_process import HubdProcess

from hubd.testing.prosody import ProsodyServer, find_free_port

UNIT = Path(__file__).parents[2] / "systemd" / "hubd.service"
INSTALLED_HUBD = "/opt/hubd/venv/bin/hubd"
# systemd-analyze's 0-100 scale: 25 = "2.5".  The unit measures 1.5 on systemd 252.
EXPOSURE_THRESHOLD = 25
WATCHDOG_USEC = 200_000  # pings every 0.1 s: several arrive within a short test


class NotifySocket:
    """systemd's end of the notify protocol: an abstract datagram socket."""

    def __init__(self) -> None:
        self.name = f"@hubd-test-{uuid.uuid4().hex}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])
        self.sock.setblocking(False)
        self.datagrams: list[list[str]] = []

    @property
    def lines(self) -> list[str]:
        return [line for datagram in self.datagrams for line in datagram]

    async def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:  # noqa: ASYNC109
        """Receive datagrams until ``done(all lines so far)``; return the lines."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while not done(self.lines):
                    data = await loop.sock_recv(self.sock, 4096)
                    self.datagrams.append(data.decode().split("\n"))
        except TimeoutError:
            raise AssertionError(f"not received in time; got {self.datagrams}") from None
        return self.lines

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def _count(lines: list[str], line: str) -> int:
    return sum(1 for item in lines if item == line)


async def test_ready_status_watchdog_stopping_in_order(
    prosody: ProsodyServer, tmp_path: Path, notify: NotifySocket
) -> None:
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        extra_env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": str(WATCHDOG_USEC)},
    )
    hub.start()
    try:
        await notify.wait_for(lambda lines: "READY=1" in lines)
        await notify.wait_for(lambda lines: "STATUS=connected, 2 devices" in lines)
        await hub.wait_for_log(r"connected to ")
        hub.mark()
        seen = _count(notify.lines, "WATCHDOG=1")
        await notify.wait_for(lambda lines: _count(lines, "WATCHDOG=1") >= seen + 5)
        # Steady state at INFO is quiet: nothing logged while the watchdog ticked.
        assert hub.log()[hub._offset :].strip() == ""
        assert hub.proc is not None
        # A reload (here of the same file) is framed by RELOADING=1 ... READY=1.
        hub.proc.send_signal(signal.SIGHUP)
        await notify.wait_for(lambda lines: _count(lines, "READY=1") == 2)
        await hub.wait_for_log(r"reloaded: \+0 -0 ~0 devices")
        hub.proc.send_signal(signal.SIGTERM)
        await notify.wait_for(lambda lines: "STOPPING=1" in lines)
        assert await hub.wait_exit() == 0
    finally:
        await hub.stop()
    lines = notify.lines
    ready = lines.index("READY=1")
    connected = lines.index("STATUS=connected, 2 devices")
    first_ping = lines.index("WATCHDOG=1")
    stopping = lines.index("STOPPING=1")
    assert ready <= connected < stopping
    assert ready < first_ping < stopping
    reloading = lines.index("RELOADING=1")
    assert lines[reloading + 1].startswith("MONOTONIC_USEC=")
    assert connected < reloading < len(lines) - 1 - lines[::-1].index("READY=1") < stopping
    # The READY datagram carries the status line of that moment.
    assert notify.datagrams[0][0] == "READY=1"
    assert notify.datagrams[0][1].startswith("STATUS=")
    assert "Traceback" not in hub.log()


async def test_ready_even_when_the_server_is_unreachable(
    prosody: ProsodyServer, tmp_path: Path, notify: NotifySocket
) -> None:
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        port=find_free_port(),
        extra_env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": str(WATCHDOG_USEC)},
    )
    hub.start()
    try:
        lines = await notify.wait_for(lambda lines: "READY=1" in lines)
        assert "STATUS=connecting... 2 devices" in lines
        # Offline is no reason for systemd to kill hubd: the watchdog keeps being fed.
        await notify.wait_for(lambda lines: _count(lines, "WATCHDOG=1") >= 3)
    finally:
        assert await hub.stop() == 0
    await notify.wait_for(lambda lines: "STOPPING=1" in lines)


async def test_status_follows_a_node_going_offline(
    prosody: ProsodyServer, tmp_path: Path, notify: NotifySocket
) -> None:
    devices = """
  - id: porch-light
    driver: gpio.output
    pin: 17
  - id: weather
    driver: serial.lines
    port: /dev/hubd-test-no-such-port
    format: json
"""
    hub = HubdProcess(
        tmp_path / "hubd", prosody, devices=devices, extra_env={"NOTIFY_SOCKET": notify.name}
    )
    hub.start()
    try:
        await notify.wait_for(lambda lines: "STATUS=connected, 2 devices, 1 offline" in lines)
    finally:
        assert await hub.stop() == 0


def _systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: ./dev setup installs it (Debian package systemd)"
    return tool


@pytest.fixture
def unit_copy(tmp_path: Path) -> Path:
    """The unit with its ExecStart paths pointing at this venv's ``hubd``."""
    hubd = Path(sys.executable).parent / "hubd"
    assert hubd.exists(), hubd
    text = UNIT.read_text()
    assert INSTALLED_HUBD in text
    copy = tmp_path / "hubd.service"
    copy.write_text(text.replace(INSTALLED_HUBD, str(hubd)))
    return copy


def test_unit_verifies_clean(unit_copy: Path) -> None:
    result = subprocess.run(
        [_systemd_analyze(), "verify", str(unit_copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values only warn: the output must be empty too.
    problems = [line for line in result.stderr.splitlines() if "hubd.service" in line]
    assert problems == []


def test_unit_security_exposure_is_low(unit_copy: Path) -> None:
    result = subprocess.run(
        [
            _systemd_analyze(),
            "security",
            "--offline=yes",
            f"--threshold={EXPOSURE_THRESHOLD}",
            str(unit_copy),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for hubd\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) * 10 <= EXPOSURE_THRESHOLD
    assert result.returncode == 0, result.stdout


def test_unit_is_what_the_daemon_expects() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "NotifyAccess=main",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "LoadCredential=xmpp-password:/etc/hubd/xmpp.password",
        "ExecReload=kill -HUP $MAINPID",
        "StateDirectory=hubd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ):
        assert line in text.splitlines(), line
    assert re.search(r"^WatchdogSec=\d+s$", text, re.MULTILINE)
