"""A bad link for the hub, made for real: a network namespace, iptables drops, a delaying relay.

Everything of a flaky-link test runs in one network namespace the test makes
(Prosody, hubd, the relay, the subscriber's client), all on its 127.0.0.1.
The test's own thread enters the namespace (``setns``), so every process it
starts and every socket it opens is inside; only the hub's link is degraded,
by giving it a port of its own: the relay (``tests/delay_relay.py``) listens
there and forwards to Prosody with a delay, and iptables drops packets on that
port (a random share for loss, all of them for a blackhole: no reset is sent).

Making a namespace needs root and ``iproute2``/``iptables`` (``./dev setup``);
CI runs as root, so there a missing piece fails the test instead of skipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CLONE_NEWNET = 0x40000000
RELAY = Path(__file__).with_name("delay_relay.py")


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"the flaky-link tests {why}; CI runs as root with them installed")
    pytest.skip(why)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def network_namespace() -> Iterator[str]:
    """A fresh network namespace with loopback up; this thread is inside it for the block."""
    if os.geteuid() != 0:
        _unavailable("need root (ip netns, iptables)")
    missing = [tool for tool in ("ip", "iptables") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"need {' and '.join(missing)} (./dev setup installs them)")
    name = f"hubd-test-{os.getpid()}-{os.urandom(3).hex()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        _unavailable(f"cannot make a network namespace: {made.stderr.strip()}")
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield name
        finally:
            _setns(original)
    finally:
        os.close(original)
        subprocess.run(["ip", "netns", "del", name], check=False)


def iptables(*args: str) -> None:
    """Run iptables in the current network namespace."""
    subprocess.run(["iptables", *args], check=True, capture_output=True)


class LinkFaults:
    """Kernel drops on one port, both directions (the hub's link to its relay)."""

    def __init__(self, port: int) -> None:
        self.port = port
        # A counting rule: it makes the namespace track connections (nf_conntrack).
        iptables("-A", "OUTPUT", "-p", "tcp", "--dport", str(port), "-m", "conntrack",
                 "--ctstate", "NEW")  # fmt: skip

    def _rules(self, action: str, *match: str) -> None:
        for direction in ("--dport", "--sport"):
            where = ["1"] if action == "-I" else []
            iptables(action, "INPUT", *where, "-p", "tcp", direction, str(self.port), *match)

    def loss(self, probability: float) -> None:
        """Drop this share of packets at random."""
        self._rules("-A", "-m", "statistic", "--mode", "random", "--probability",
                    str(probability), "-j", "DROP")  # fmt: skip

    def blackhole(self) -> None:
        """Drop everything (no reset: the link just goes quiet)."""
        self._rules("-I", "-j", "DROP")

    def restore(self) -> None:
        """End the blackhole (the loss stays)."""
        self._rules("-D", "-j", "DROP")

    def connection_attempts(self) -> set[int]:
        """Source ports of connections opened towards the port (as conntrack holds them)."""
        try:
            table = Path("/proc/net/nf_conntrack").read_text()
        except OSError:
            return set()
        pattern = re.compile(rf"sport=(\d+) dport={self.port}\b")
        return {int(m.group(1)) for line in table.splitlines() if (m := pattern.search(line))}


class DelayRelay:
    """``tests/delay_relay.py`` in a child process: half the round trip each way, jitter."""

    def __init__(self, listen: int, target: int, rtt: float, jitter: float) -> None:
        self.args = [str(listen), str(target), str(rtt / 2), str(jitter)]
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, str(RELAY), *self.args, stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(10):
            line = await self.proc.stdout.readline()
        assert line.strip() == b"ready", line

    def flap(self) -> None:
        """Reset every connection the relay carries (TCP RST both ways)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
