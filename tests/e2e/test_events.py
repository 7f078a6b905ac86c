"""Event subscriptions end to end: a serial device on a pty, ``hubd run``, Prosody, a subscriber.

The subscriber is a plain slixmpp client speaking the IoT events draft with raw
stanzas.  Nothing here sleeps and hopes: every wait is on a message, a log line
or a process, with a timeout.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import SD, IqFailure, iq, readout
from pty_device import Pty
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

EV = "urn:xmpp:iot:events"
DELAY = "urn:xmpp:delay"


def devices(port: Path) -> str:
    return f"""
  - id: weather
    driver: serial.lines
    port: {port}
    format: json
    fields:
      temperature: {{unit: "°C"}}
  - id: porch-light
    driver: gpio.output
    pin: 17
"""


class Scene:
    """A pty device, a hubd process and a connected subscriber."""

    def __init__(self, server: ProsodyServer, workdir: Path, extra_config: str = "") -> None:
        self.server = server
        self.device = Pty(workdir / "ttyWEATHER")
        self.hub = HubdProcess(
            workdir / "hubd",
            server,
            devices=devices(self.device.link),
            verbose=True,
            extra_config=extra_config,
        )
        self.client: TestClient | None = None

    async def start_hub(self) -> None:
        self.hub.mark()
        self.hub.start()
        await self.hub.wait_for_log(r"node weather is (back )?online")
        await self.hub.wait_for_log(r"connected to ")

    async def connect(self) -> TestClient:
        self.client = await connect_client(self.server, "alice", "alicepass")
        return self.client

    async def say(self, temperature: str) -> None:
        """The device sends a reading; wait until the hub has taken it in."""
        self.hub.mark()
        self.device.write(f'{{"temperature": {temperature}}}\n'.encode())
        await self.hub.wait_for_log(r"line b'\{\"temperature\": " + temperature.replace(".", r"\."))

    async def event(self, seqnr: int, timeout: float = 10) -> tuple[str, Element]:  # noqa: ASYNC109
        """The next event of ``seqnr``: (temperature, message xml)."""
        assert self.client is not None
        message = await self.client.wait_message(
            lambda m: any(
                c.tag == f"{{{SD}}}fields" and c.get("seqnr") == str(seqnr) for c in m.xml
            ),
            timeout=timeout,
        )
        field = message.xml.find(f".//{{{SD}}}numeric[@name='temperature']")
        assert field is not None, message
        return field.get("value", ""), message.xml

    async def subscribe(self, seqnr: int, body: str = "", **attrs: str) -> Element | IqFailure:
        assert self.client is not None
        extra = "".join(f" {k}='{v}'" for k, v in attrs.items())
        return await iq(
            self.client,
            self.hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='{seqnr}'{extra}>"
            f"<node nodeId='weather'/>{body}</subscribe>",
        )


@pytest.fixture
def extra_config() -> str:
    """More configuration for the scene's hub (a test overrides it with parametrize).
    Every change is stored in the history: the tests read it back seconds later."""
    return "events: {history_sample: 0}"


@pytest.fixture
async def scene(prosody: ProsodyServer, tmp_path: Path, extra_config: str) -> AsyncIterator[Scene]:
    scene = Scene(prosody, tmp_path, extra_config)
    scene.device.plug()
    await scene.start_hub()
    await scene.connect()
    await scene.say("20.0")
    yield scene
    if scene.client is not None:
        await scene.client.disconnect_and_wait()
    await scene.hub.stop()
    scene.device.unplug()


async def test_changed_by_fires_against_the_last_reported_value(scene: Scene) -> None:
    accepted = await scene.subscribe(7, "<field name='temperature' changedBy='0.5'/>")
    assert isinstance(accepted, Element)
    assert accepted.tag == f"{{{SD}}}accepted"
    await scene.say("20.3")  # +0.3 from 20.0: nothing
    await scene.say("20.6")  # +0.6: an event
    value, xml = await scene.event(7)
    assert value == "20.6"
    fields = xml.find(f"{{{SD}}}fields")
    assert fields is not None
    assert fields.get("done") == "true"
    assert xml.find(f"{{{DELAY}}}delay") is None, "a live event is not marked delayed"
    await scene.say("20.9")  # +0.3 from the reported 20.6: nothing (hysteresis)
    await scene.say("20.0")  # -0.6: an event
    value, _ = await scene.event(7)
    assert value == "20.0", "20.9 did not fire: the next event is 20.0"


async def test_a_burst_is_acknowledged_and_leaves_the_outbox(scene: Scene) -> None:
    """The server acknowledges every event (paced requests, hubd/xmpp/acks.py): none stays."""
    accepted = await scene.subscribe(8)
    assert isinstance(accepted, Element)
    scene.hub.mark()
    burst = [f"{40 + i}.5" for i in range(30)]
    for reading in burst:
        scene.device.write(f'{{"temperature": {reading}}}\n'.encode())
    received = []
    last_id = 0
    while len(received) < len(burst):
        message = await scene.client.wait_message(  # type: ignore[union-attr]
            lambda m: m.xml.find(f"{{{SD}}}fields[@seqnr='8']") is not None
        )
        received += [
            v.get("value")
            for v in message.xml.iter(f"{{{SD}}}numeric")
            if v.get("name") == "temperature"
        ]
        # hubd-ev-12, or hubd-ev-12.15.19 for a batch: the events it carried.
        last_id = max(last_id, *map(int, message.xml.get("id", "").split("-")[-1].split(".")))
    assert received == burst
    # Every one was acknowledged, the last one too (the request after it), and none
    # stays in the outbox once hubd stopped (which writes what it held): read from
    # outside, as a restart would.
    await scene.hub.wait_for_log(rf"acknowledged, up to id {last_id}\n")
    assert await scene.hub.stop() == 0
    assert _outbox_values(scene.hub.workdir / "state" / "hubd.sqlite") == []


async def test_changed_up_only_fires_upwards(scene: Scene) -> None:
    await scene.subscribe(8, "<field name='temperature' changedUp='1'/>")
    await scene.say("18.0")  # down 2: not watched
    await scene.say("21.5")  # up 1.5 from 20.0
    value, _ = await scene.event(8)
    assert value == "21.5"


async def test_min_interval_holds_and_sends_the_latest(scene: Scene) -> None:
    await scene.subscribe(9, minInterval="PT1S")
    await scene.say("21.0")
    assert (await scene.event(9))[0] == "21.0"
    await scene.say("22.0")  # within the interval: held...
    await scene.say("23.0")  # ...and replaced by the newest
    assert (await scene.event(9))[0] == "23.0"


async def test_max_interval_sends_without_a_change(scene: Scene) -> None:
    await scene.subscribe(10, maxInterval="PT1S", req="true")
    assert (await scene.event(10))[0] == "20.0"  # req: the current value at once
    assert (await scene.event(10))[0] == "20.0"  # then again, unchanged, after maxInterval
    assert (await scene.event(10))[0] == "20.0"


async def test_unsubscribe_and_a_new_subscription_replaces_the_old(scene: Scene) -> None:
    await scene.subscribe(11)
    await scene.say("21.0")
    assert (await scene.event(11))[0] == "21.0"
    # One subscription per subscriber and node: seqnr 12 replaces 11.
    await scene.subscribe(12)
    await scene.say("22.0")
    assert (await scene.event(12))[0] == "22.0"
    assert scene.client is not None
    result = await iq(scene.client, scene.hub.jid, f"<unsubscribe xmlns='{EV}' seqnr='12'/>")
    assert isinstance(result, Element)
    await scene.subscribe(13)
    await scene.say("23.0")
    assert (await scene.event(13))[0] == "23.0"
    stale = [
        m for m in scene.client._unmatched if any(c.get("seqnr") in ("11", "12") for c in m.xml)
    ]
    assert stale == [], "no event for an ended subscription"


async def test_bad_subscriptions_are_refused(scene: Scene, prosody: ProsodyServer) -> None:
    unknown = await scene.subscribe(14, "<field name='temperature' changedBy='-1'/>")
    assert isinstance(unknown, IqFailure)
    assert unknown.condition == "bad-request"
    assert scene.client is not None
    missing = await iq(
        scene.client,
        scene.hub.jid,
        f"<subscribe xmlns='{EV}' seqnr='15'><node nodeId='attic'/></subscribe>",
    )
    assert isinstance(missing, IqFailure)
    assert missing.condition == "item-not-found"
    stranger = await connect_client(prosody, "mallory", "mallorypass")
    try:
        refused = await iq(stranger, scene.hub.jid, f"<subscribe xmlns='{EV}' seqnr='1'/>")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "forbidden"
    finally:
        await stranger.disconnect_and_wait()


async def test_a_subscription_survives_a_restart_of_hubd(scene: Scene) -> None:
    await scene.subscribe(16, "<field name='temperature' changedBy='1'/>")
    assert await scene.hub.stop() == 0
    await scene.start_hub()
    await scene.hub.wait_for_log(r"restored 1 event subscription")
    await scene.say("20.4")  # below the threshold against the stored reference 20.0
    await scene.say("21.5")
    value, _ = await scene.event(16)
    assert value == "21.5"


async def test_readings_during_a_server_outage_arrive_afterwards_in_order(
    restartable_prosody: ProsodyServer, tmp_path: Path
) -> None:
    scene = Scene(restartable_prosody, tmp_path)
    scene.device.plug()
    await scene.start_hub()
    client = await scene.connect()
    try:
        await scene.say("20.0")
        await scene.subscribe(17)
        await client.disconnect_and_wait()
        scene.client = None
        scene.hub.mark()
        await asyncio.to_thread(restartable_prosody.stop)
        await scene.hub.wait_for_log(r"lost the connection")
        for reading in ("21.1", "22.2", "23.3"):
            await scene.say(reading)
        await asyncio.to_thread(restartable_prosody.start)
        await scene.hub.wait_for_log(r"connected to ", timeout=30)
        await scene.connect()
        seen = []
        for _ in range(3):
            value, xml = await scene.event(17, timeout=20)
            delay = xml.find(f"{{{DELAY}}}delay")
            assert delay is not None, "held events carry an XEP-0203 delay"
            assert delay.get("stamp", "").endswith("Z")
            seen.append(value)
        assert seen == ["21.1", "22.2", "23.3"]
    finally:
        if scene.client is not None:
            await scene.client.disconnect_and_wait()
        await scene.hub.stop()
        scene.device.unplug()


@pytest.mark.parametrize("extra_config", [""])  # the defaults
async def test_kill_9_loses_no_event_the_hub_took_on(scene: Scene) -> None:
    """Default settings (commit batching on): events the server acknowledged before
    a ``kill -9`` are not sent again, and every event that waited for its subscriber
    when the hub was killed arrives after the restart, exactly once, in order."""
    assert scene.client is not None
    # The hub follows its subscribers' presence to know when one leaves; the test
    # client approves the hub's request (slixmpp's default) before it goes.
    scene.hub.mark()
    await scene.subscribe(18)
    await scene.hub.wait_for_log(r"subscriber alice@localhost: its presence is followed")
    # Two live events, acknowledged by the server (XEP-0198) before the kill.
    live = ["25.1", "25.2"]
    for reading in live:
        scene.hub.mark()
        await scene.say(reading)
        assert (await scene.event(18))[0] == reading
        await scene.hub.wait_for_log(r"acknowledged, up to id \d+\n")
    # The subscriber leaves: the hub sees it go and holds its events.
    scene.hub.mark()
    await scene.client.disconnect_and_wait()
    scene.client = None
    await scene.hub.wait_for_log(r"subscriber alice@localhost is away")
    scene.hub.mark()
    burst = [f"{30 + i}.5" for i in range(20)]
    for reading in burst:
        scene.device.write(f'{{"temperature": {reading}}}\n'.encode())
    # Kill as soon as the store has taken some of the burst: mid-burst, very likely.
    await scene.hub.wait_for_log(r"stored \d+ event\(s\)")
    assert scene.hub.proc is not None
    scene.hub.proc.send_signal(signal.SIGKILL)
    await scene.hub.wait_exit()
    # What the hub took on before the kill is on disk: the burst's start, no gap
    # (the rest of it was still unread on the device's line, never taken on).
    stored = _outbox_values(scene.hub.workdir / "state" / "hubd.sqlite")
    assert stored, "the burst reached the store"
    assert stored == burst[: len(stored)]
    await scene.start_hub()
    await scene.connect()
    received = []
    for _ in stored:
        value, xml = await scene.event(18, timeout=20)
        assert xml.find(f"{{{DELAY}}}delay") is not None, "they waited: XEP-0203 stamps"
        received.append(value)
    assert received == stored, "exactly these, in order: no live event again"
    # Then none of them again.  The new hubd may still read the burst's end from the
    # device's line (what the killed one had not read): new events, in order.
    await scene.say("40.0")
    later = []
    while (value := (await scene.event(18))[0]) != "40.0":
        later.append(value)
    rest = burst[len(stored) :]
    assert all(v in rest for v in later), f"none of the stored ones again: {later}"
    assert later == sorted(set(later), key=rest.index), "no repeats, in order"


async def test_kill_9_right_after_an_event_loses_nothing_acknowledged(scene: Scene) -> None:
    """hubd holds readings and the subscriptions' references in memory for up to
    ``events.commit_interval`` (SD-card wear, hubd/events/pending.py), but what it
    acknowledged to its subscriber survives a ``kill -9`` right after the event: the
    subscription it accepted, the readings a historical readout showed (written
    before the answer), and the event it got is not sent again."""
    accepted = await scene.subscribe(19, "<field name='temperature' changedBy='0.5'/>")
    assert isinstance(accepted, Element)
    await scene.say("20.6")
    assert (await scene.event(19))[0] == "20.6"
    shown = await _historical(scene, until="20.6")
    assert shown[-2:] == ["20.0", "20.6"]
    assert scene.hub.proc is not None
    scene.hub.proc.send_signal(signal.SIGKILL)
    await scene.hub.wait_exit()
    await scene.start_hub()
    await scene.hub.wait_for_log(r"restored 1 event subscription")
    assert await _historical(scene, until="20.6") == shown
    await scene.say("21.2")
    assert (await scene.event(19))[0] == "21.2", "the next event, not 20.6 again"


async def _historical(scene: Scene, until: str) -> list[str]:
    """The temperatures a historical readout shows, asked until ``until`` is among them
    (the engine takes a reading in after it sent its events)."""
    assert scene.client is not None
    request = (
        f"<req xmlns='{SD}' seqnr='{{}}' historical='true'>"
        "<node nodeId='weather'/><field name='temperature'/></req>"
    )
    history: list[str] = []
    for seqnr in range(300, 350):
        _, payloads = await readout(scene.client, scene.hub.jid, request.format(seqnr))
        history = [
            f.get("value", "")
            for p in payloads
            for f in p.iter(f"{{{SD}}}numeric")
            if f.get("historicalOther") == "true"
        ]
        if until in history:
            break
    return history


def _outbox_values(path: Path) -> list[str]:
    import json

    # closing(): a connection's own context manager commits but does not close.
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute("SELECT event FROM outbox ORDER BY id").fetchall()
    values = []
    for (text,) in rows:
        for value in json.loads(text)["values"]:
            if value["n"] == "temperature":
                values.append(value["v"])
    return values


async def test_historical_readout_answers_from_the_store(scene: Scene) -> None:
    await scene.say("21.0")
    await scene.say("22.5")
    assert scene.client is not None
    request = (
        f"<req xmlns='{SD}' seqnr='{{}}' historical='true'>"
        "<node nodeId='weather'/><field name='temperature'/></req>"
    )
    history: list[str] = []
    # The engine commits history in the background: ask until it has all three.
    for seqnr in range(100, 150):
        _, payloads = await readout(scene.client, scene.hub.jid, request.format(seqnr))
        history = [
            f.get("value", "")
            for p in payloads
            for f in p.iter(f"{{{SD}}}numeric")
            if f.get("historicalOther") == "true"
        ]
        if len(history) >= 3:
            break
    assert history[-3:] == ["20.0", "21.0", "22.5"]


async def test_data_source_subscribers_hear_a_node_go_offline_and_return(scene: Scene) -> None:
    conc = "urn:xmpp:iot:concentrators"
    assert scene.client is not None
    answer = await iq(
        scene.client, scene.hub.jid, f"<subscribe xmlns='{conc}' sourceId='serial'/>", "set"
    )
    assert isinstance(answer, Element)
    assert answer.get("result") == "OK"

    async def status() -> Element:
        assert scene.client is not None
        message = await scene.client.wait_message(
            lambda m: m.xml.find(f"{{{conc}}}nodeStatusChanged") is not None
        )
        element = message.xml.find(f"{{{conc}}}nodeStatusChanged")
        assert element is not None
        return element

    scene.device.unplug()
    gone = await status()
    assert (gone.get("nodeId"), gone.get("state")) == ("weather", "ErrorUnsigned")
    scene.device.plug()
    back = await status()
    assert (back.get("nodeId"), back.get("state")) == ("weather", "None")
