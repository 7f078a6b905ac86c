"""A Pi's SD card: a damaged state file and a full state_dir, with a real hubd and Prosody.

The full disk is a real one: a 2 MiB tmpfs mounted on ``state_dir`` (root, as
in CI; without root under ``CI=true`` the test fails), filled with a file
after hubd started.  The systemd status line is read from a notify socket the
test binds, as systemd would.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from full_disk import fill, tiny_tmpfs
from hubd_process import HubdProcess
from iot_client import CTRL, SD, iq, readout
from pty_device import Pty
from test_events import devices
from test_systemd_unit import NotifySocket
from xmpp_client import TestClient, connect_client

from hubd.core.omemo_settings import omemo_installed
from hubd.events.store import Store
from hubd.events.tables import HistoryRow, StoredSubscription
from hubd.testing.prosody import ProsodyServer

EV = "urn:xmpp:iot:events"


class Rig:
    """A pty weather station and a porch light behind a hubd process, a notify socket."""

    def __init__(self, server: ProsodyServer, workdir: Path) -> None:
        self.server = server
        self.device = Pty(workdir / "ttyWEATHER")
        self.notify = NotifySocket()
        self.hub = HubdProcess(
            workdir / "hubd",
            server,
            devices=devices(self.device.link),
            verbose=True,
            extra_env={"NOTIFY_SOCKET": self.notify.name},
            # A commit per batch (not once a minute): each reading meets the full disk.
            extra_config="events: {commit_interval: 0}",
        )
        self.state = self.hub.workdir / "state"

    async def start(self) -> None:
        self.hub.mark()
        self.hub.start()
        await self.hub.wait_for_log(r"node weather is (back )?online")
        await self.hub.wait_for_log(r"connected to ")

    async def say(self, temperature: str) -> None:
        self.hub.mark()
        self.device.write(f'{{"temperature": {temperature}}}\n'.encode())
        await self.hub.wait_for_log(r"line b'\{\"temperature\": " + temperature.replace(".", r"\."))

    async def subscribe(self, client: TestClient, seqnr: int) -> None:
        accepted = await iq(
            client,
            self.hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='{seqnr}'><node nodeId='weather'/></subscribe>",
        )
        assert isinstance(accepted, Element), accepted

    async def event(self, client: TestClient, seqnr: int) -> dict[str, str]:
        """The next event of ``seqnr``: {field name: value}."""
        message = await client.wait_message(
            lambda m: m.xml.find(f"{{{SD}}}fields[@seqnr='{seqnr}']") is not None, timeout=15
        )
        return {f.get("name", ""): f.get("value", "") for f in message.xml.iter() if f.get("name")}

    async def control_and_read(self, client: TestClient, on: bool, seqnr: int) -> None:
        """Switch the porch light, then read it out: both answered."""
        value = "true" if on else "false"
        result = await iq(
            client,
            self.hub.jid,
            f"<set xmlns='{CTRL}'><node nodeId='porch-light'/>"
            f"<boolean name='state' value='{value}'/></set>",
            "set",
        )
        assert isinstance(result, Element), result
        _, payloads = await readout(
            client,
            self.hub.jid,
            f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'>"
            "<node nodeId='porch-light'/></req>",
        )
        states = [f.get("value") for p in payloads for f in p.iter(f"{{{SD}}}boolean")]
        assert value in states, payloads


@pytest.fixture
async def rig(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[Rig]:
    rig = Rig(prosody, tmp_path)
    rig.device.plug()
    yield rig
    await rig.hub.stop()
    rig.device.unplug()
    rig.notify.close()


async def _old_store(path: Path) -> None:
    """A store as a hub that ran a while leaves it: subscriptions, an outbox, history."""
    store = Store(path)
    await store.open()
    await store.save_subscription(StoredSubscription("alice@localhost", "weather", "x", {}, {}))
    await store.enqueue([("alice@localhost", {"n": i}) for i in range(50)], limit=1000)
    await store.record(
        [HistoryRow("weather", "temperature", float(i), {"v": str(i)}) for i in range(20_000)]
    )
    await store.close()


@pytest.mark.parametrize("damage", ["cut", "garbage"])
async def test_a_damaged_store_is_moved_aside_and_the_hub_comes_online(
    rig: Rig, prosody: ProsodyServer, damage: str
) -> None:
    path = rig.state / "hubd.sqlite"
    await _old_store(path)
    size = path.stat().st_size
    if damage == "cut":
        os.truncate(path, random.Random().randrange(1, size - 4096))
    else:
        with path.open("r+b") as f:
            f.seek(size // 2 // 4096 * 4096)
            f.write(random.Random().randbytes(8 * 4096))
    await rig.start()
    line = await rig.hub.wait_for_log(r"the state file .* is damaged .*\n")
    assert len(re.findall(r"is damaged", rig.hub.log())) == 1
    aside = [
        p for p in rig.state.glob("hubd.sqlite.corrupt-*") if not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(aside) == 1, "the damaged file lies beside the fresh one"
    assert str(aside[0]) in line, line
    assert path.exists(), "a fresh store beside the old one"
    alice = await connect_client(prosody, "alice", "alicepass")
    try:
        await rig.control_and_read(alice, True, 1)
        await rig.subscribe(alice, 5)
        await rig.say("21.5")
        assert (await rig.event(alice, 5))["temperature"] == "21.5"
    finally:
        await alice.disconnect_and_wait()


# --- a full disk ----------------------------------------------------------------


@pytest.fixture
def tiny_state(rig: Rig) -> Iterator[Path]:
    # 16 MiB: room for hubd.sqlite and the OMEMO key store (its WAL reaches 4 MiB while the
    # keys are made) with 1 MiB to spare once the filler is gone.
    with tiny_tmpfs(rig.state, "16m") as state:
        yield state


async def test_a_full_disk_keeps_control_readouts_and_live_events(
    rig: Rig, tiny_state: Path, prosody: ProsodyServer
) -> None:
    await rig.start()
    await rig.notify.wait_for(lambda lines: "READY=1" in lines)
    if omemo_installed():
        # The OMEMO keys are written once after connecting; the disk fills after that.
        await rig.hub.wait_for_log(r"OMEMO (ready|unavailable)", timeout=90)
    alice = await connect_client(prosody, "alice", "alicepass")
    bob = await connect_client(prosody, "bob", "bobpass")
    try:
        await rig.subscribe(alice, 1)
        await rig.subscribe(bob, 2)
        await rig.hub.wait_for_log(r"subscriber bob@localhost: its presence is followed")
        rig.hub.mark()
        await bob.disconnect_and_wait()
        await rig.hub.wait_for_log(r"subscriber bob@localhost is away")

        filler = fill(tiny_state)
        await rig.control_and_read(alice, True, 10)
        await rig.say("30.5")
        assert (await rig.event(alice, 1))["temperature"] == "30.5"
        await rig.notify.wait_for(lambda lines: any("storage full" in x for x in lines))
        await rig.control_and_read(alice, False, 11)
        await rig.say("31.5")  # bob is away: this one can be neither sent nor kept
        assert (await rig.event(alice, 1))["temperature"] == "31.5"
        assert not rig.hub.log().count("is damaged")
        assert rig.hub.log().count("cannot write the state file") == 1
        assert rig.hub.proc is not None
        assert rig.hub.proc.poll() is None, "hubd runs on"

        # Space returns: the next reading is stored again, for bob too.
        # (The first commit after the unlink may be an acknowledgement's, before the reading.)
        since = len(rig.hub.log())
        filler.unlink()
        await rig.say("32.5")
        assert (await rig.event(alice, 1))["temperature"] == "32.5"
        await rig.hub.wait_for_log(r"can be written again", since=since)
        await rig.notify.wait_for(
            lambda lines: (
                [x for x in lines if x.startswith("STATUS=")][-1] == "STATUS=connected, 2 devices"
            )
        )
        assert rig.hub.log().count("are stored again") == 1
        # Bob was away for 30.5, 31.5 and 32.5.  On a nearly full disk a small commit
        # may still fit: each of them reaches him, or is counted, never neither.
        bob = await connect_client(prosody, "bob", "bobpass")
        received: list[str] = []
        dropped = 0
        while "32.5" not in received:
            got = await rig.event(bob, 2)
            received.append(got["temperature"])
            dropped += int(got.get("dropped_events", "0"))
        assert received == sorted(received), "in order"
        assert len(received) + dropped == 3, (received, dropped)
        assert dropped >= 1, "the reading of the full disk was counted, not pretended"
    finally:
        await alice.disconnect_and_wait()
        await bob.disconnect_and_wait()
