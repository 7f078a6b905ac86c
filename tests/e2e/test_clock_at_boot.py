"""A Pi without a real-time clock: hubd starts with the clock at 2019-06-01, then NTP sets it.

libfaketime moves hubd's wall clock only (``FAKETIME_DONT_FAKE_MONOTONIC``,
as on a Pi: the monotonic clock counts from boot), from a file the test
rewrites while hubd runs (``FAKETIME_TIMESTAMP_FILE`` with
``FAKETIME_NO_CACHE``).  Prosody and the test keep the real clock.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from iot_client import SD, iq
from pty_device import Pty
from test_events import EV, devices
from xmpp_client import TestClient, connect_client

from hubd.core import xsd
from hubd.events.store import Store
from hubd.testing.prosody import ProsodyServer

BOOT = datetime(2019, 6, 1, 12, 0, tzinfo=UTC)
DELAY = "urn:xmpp:delay"
CLOCK_MESSAGE = (
    "the system clock says 2019-06-01, so the server's certificate cannot be checked;"
    " waiting for the clock to be set"
)
SLACK = timedelta(
    seconds=1
)  # stamps are written to the millisecond; the test's clock is read around


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        why = "needs libfaketime (Debian faketime; ./dev setup installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return found[0]


class Boot:
    """A hubd process whose wall clock the test sets, a pty thermometer, and alice."""

    def __init__(self, server: ProsodyServer, workdir: Path) -> None:
        self.device = Pty(workdir / "ttyWEATHER")
        self.clock_file = workdir / "faketime"
        self.clock_file.write_text("+0\n")
        self.faked = {
            "LD_PRELOAD": _libfaketime(),
            "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        self.hub = HubdProcess(
            workdir / "hubd",
            server,
            devices=devices(self.device.link),
            verbose=True,
            # Every change stored (no history sampling): readings a second apart are counted.
            extra_config="events: {history_sample: 0}",
        )
        self.client: TestClient | None = None

    def set_clock(self, to: datetime | None) -> None:
        """Make hubd's clock say ``to`` from now on (None: the real time)."""
        offset = 0 if to is None else int((to - datetime.now(UTC)).total_seconds())
        tmp = self.clock_file.with_suffix(".new")
        tmp.write_text(f"{offset:+d}\n")
        tmp.replace(self.clock_file)  # libfaketime rereads it whole at each call

    async def say(self, temperature: str) -> None:
        self.hub.mark()
        self.device.write(f'{{"temperature": {temperature}}}\n'.encode())
        await self.hub.wait_for_log(r"line b'\{\"temperature\": " + temperature.replace(".", r"\."))

    async def event(self) -> tuple[str, datetime, datetime | None]:
        """The next event: (temperature, its reading's time, its delay stamp or None)."""
        assert self.client is not None
        message = await self.client.wait_message(
            lambda m: m.xml.find(f"{{{SD}}}fields[@seqnr='5']") is not None, timeout=20
        )
        ts = next(message.xml.iter(f"{{{SD}}}timestamp"))
        field = ts.find(f"{{{SD}}}numeric[@name='temperature']")
        assert field is not None
        delay = message.xml.find(f"{{{DELAY}}}delay")
        stamp = None if delay is None else xsd.parse_datetime(delay.get("stamp", ""))
        return field.get("value", ""), xsd.parse_datetime(ts.get("value", "")), stamp


@pytest.fixture
async def boot(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Boot]:
    boot = Boot(prosody, tmp_path)
    boot.device.plug()
    boot.client = await connect_client(prosody, "alice", ACCOUNTS["alice"])
    try:
        yield boot
    finally:
        await boot.client.disconnect_and_wait()
        await boot.hub.stop()
        boot.device.unplug()


async def test_a_clock_in_the_past_is_explained_then_the_hub_connects_by_itself(
    boot: Boot,
) -> None:
    # Before the reboot: the hub runs with a right clock, alice subscribes.
    async with boot.hub.running():
        accepted = await iq(
            boot.client,  # type: ignore[arg-type]
            boot.hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='5'><node nodeId='weather'/></subscribe>",
        )
        assert isinstance(accepted, Element), accepted
        await boot.say("20.5")
        assert (await boot.event())[0] == "20.5"
        await boot.hub.wait_for_log(r"event\(s\) acknowledged")  # it leaves the outbox
    started = datetime.now(UTC)

    # The Pi boots without NTP: its clock says 2019-06-01.
    boot.set_clock(BOOT)
    boot.hub.extra_env = boot.faked
    boot.hub.mark()
    boot.hub.start()
    await boot.hub.wait_for_log(r"node weather is (back )?online")
    await boot.hub.wait_for_log(CLOCK_MESSAGE.replace(".", r"\.").replace("'", "."), timeout=30)
    await boot.hub.wait_for_log(r"still cannot connect; next connection attempt in", timeout=30)
    taken_from = datetime.now(UTC)
    await boot.say("21.5")
    await boot.say("22.5")
    taken_until = datetime.now(UTC)

    # NTP sets the clock: the hub connects by itself, without a restart.
    pid = boot.hub.proc.pid if boot.hub.proc else None
    boot.set_clock(None)
    await boot.hub.wait_for_log(r"the system clock was set", timeout=30)
    await boot.hub.wait_for_log(r"connected to ", timeout=30)
    assert boot.hub.proc is not None
    assert boot.hub.proc.pid == pid
    assert boot.hub.proc.poll() is None

    # The readings that waited tell the time they were really taken.
    for expected in ("21.5", "22.5"):
        value, taken, stamp = await boot.event()
        assert value == expected
        assert stamp is not None, "it waited: a delay stamp"
        assert taken_from - SLACK <= taken <= taken_until + SLACK, taken
        assert stamp == taken
    await boot.say("23.5")
    value, taken, stamp = await boot.event()
    assert (value, stamp) == ("23.5", None), "live again"

    log = boot.hub.log()[boot.hub.log().index("the system clock says") - 200 :]
    assert log.count(CLOCK_MESSAGE) == 1, "said once, in plain words"
    assert "CERT: Invalid certificate trust chain" not in log
    assert not re.search(r" (ERROR|CRITICAL) +hubd", log)
    await boot.hub.stop()

    # The history has them at their real time, none in 2019.
    store = Store(boot.hub.workdir / "state" / "hubd.sqlite")
    await store.open()
    try:
        rows = await store.history("weather", ["temperature"], 0, 1e12, 100)
    finally:
        await store.close()
    filed = {r.value["v"]: datetime.fromtimestamp(r.ts, UTC) for r in rows}
    assert set(filed) >= {"21.5", "22.5", "23.5"}
    assert all(ts >= started - timedelta(minutes=5) for ts in filed.values()), filed
    for value in ("21.5", "22.5"):
        assert taken_from - SLACK <= filed[value] <= taken_until + SLACK, (value, filed)
