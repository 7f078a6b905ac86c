"""The GPIO, 1-Wire and system drivers inside a real ``hubd run`` against a real Prosody.

Mock pins (``gpio.pin_factory: mock``) and fake sysfs trees stand in for the
Pi, so the daemon runs exactly the code it runs on a Pi.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from xml.etree.ElementTree import Element

from hubd_process import HubdProcess
from iot_client import CTRL, SD, IqFailure, field_values, iq, readout
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

SENSOR = "28-0316a2795aff"
W1_SLAVE = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
ONLINE = ("door", "gate", "dimmer", "garden", "pi")


def fake_pi(tmp_path: Path) -> tuple[Path, Path]:
    """A 1-Wire folder with one sensor, and a root with /proc and /sys files."""
    w1 = tmp_path / "w1"
    (w1 / SENSOR).mkdir(parents=True)
    (w1 / SENSOR / "w1_slave").write_text(W1_SLAVE)
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/loadavg").write_text("0.52 0.58 0.59 1/389 12345\n")
    (root / "proc/meminfo").write_text(
        "MemTotal:        3884328 kB\nMemFree:         2403232 kB\nMemAvailable:    3274408 kB\n"
    )
    (root / "proc/uptime").write_text("350735.47 1384126.29\n")
    zone = root / "sys/class/thermal/thermal_zone0"
    zone.mkdir(parents=True)
    (zone / "temp").write_text("48312\n")
    return w1, root


def devices(w1: Path, root: Path, disk: Path) -> str:
    return f"""
  - {{id: door, driver: gpio.input, pin: 27, pull_up: true, bounce_time: 0.05,
     count_edges: true}}
  - {{id: gate, driver: gpio.output, pin: 17, active_high: false, pulse: 0.5}}
  - {{id: dimmer, driver: gpio.pwm, pin: 18, frequency: 200, initial: 0.25}}
  - {{id: garden, driver: gpio.onewire, sensor_id: {SENSOR}, base_path: {w1},
     poll_interval: 1}}
  - {{id: shed, driver: gpio.onewire, sensor_id: 28-000000000001, base_path: {w1}}}
  - {{id: pi, driver: system, root: {root}, disk_path: {disk}, poll_interval: 1}}
"""


async def test_every_driver_runs_in_the_daemon_and_a_missing_sensor_is_one_offline_node(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    w1, root = fake_pi(tmp_path)
    hub = HubdProcess(tmp_path / "hubd", prosody, devices=devices(w1, root, tmp_path))
    hub.start()
    try:
        await hub.wait_for_log(r"connected to ")
        for node in ONLINE:
            await hub.wait_for_log(rf"node {node} is online")
        text = await hub.wait_for_log(r"node shed is offline")
        assert f"1-Wire sensor 28-000000000001 not found in {w1}" in text
        owner = await connect_client(prosody, "alice", "alicepass", resource="gpio")
        try:
            loop = asyncio.get_running_loop()
            status: asyncio.Future[str] = loop.create_future()

            def on_presence(presence: object) -> None:
                if presence["from"].bare == "hub@localhost" and not status.done():  # type: ignore[index]
                    status.set_result(presence["status"])  # type: ignore[index]

            owner.add_event_handler("presence_available", on_presence)
            owner.send_presence(pto="hub@localhost", ptype="subscribe")
            assert await asyncio.wait_for(status, 10) == "6 devices, 1 offline"
        finally:
            await owner.disconnect_and_wait()
        log = hub.log()
        for node in ONLINE:
            assert f"node {node} is offline" not in log
        assert "Traceback" not in log
    finally:
        assert await hub.stop() == 0
    assert "Traceback" not in hub.log()


async def read_node(client: TestClient, jid: str, node: str, seqnr: int) -> dict[str, str]:
    _, payloads = await readout(
        client, jid, f"<req xmlns='{SD}' seqnr='{seqnr}' all='true'><node nodeId='{node}'/></req>"
    )
    return field_values(payloads[0])[node]


async def control(client: TestClient, jid: str, node: str, param: str) -> Element | IqFailure:
    return await iq(client, jid, f"<set xmlns='{CTRL}'><node nodeId='{node}'/>{param}</set>", "set")


async def test_readout_of_each_driver_and_controls(prosody: ProsodyServer, tmp_path: Path) -> None:
    w1, root = fake_pi(tmp_path)
    hub = HubdProcess(tmp_path / "hubd", prosody, devices=devices(w1, root, tmp_path))
    hub.start()
    owner = None
    try:
        await hub.wait_for_log(r"connected to ")
        for node in ONLINE:
            await hub.wait_for_log(rf"node {node} is online")
        owner = await connect_client(prosody, "alice", "alicepass", resource="gpio")
        nodes = "".join(f"<node nodeId='{node}'/>" for node in (*ONLINE, "shed"))
        _, payloads = await readout(
            owner, hub.jid, f"<req xmlns='{SD}' seqnr='1' all='true'>{nodes}</req>"
        )
        values: dict[str, dict[str, str]] = {}
        for payload in payloads:
            values.update(field_values(payload))
        assert values["door"] == {"state": "false", "count": "0", "online": "true"}
        assert values["gate"] == {"state": "false", "online": "true"}
        assert values["dimmer"] == {"level": "0.250", "online": "true"}
        assert values["garden"] == {"temperature": "23.125", "online": "true"}
        pi = values["pi"]
        assert {k: v for k, v in pi.items() if k != "disk_used"} == {
            "cpu_temperature": "48.312",
            "load_1m": "0.52",
            "load_5m": "0.58",
            "load_15m": "0.59",
            "memory_used": "15.7",
            "uptime": "P4DT1H25M35S",
            "online": "true",
        }
        assert 0 <= float(pi["disk_used"]) <= 100
        [temperature] = [
            field
            for payload in payloads
            for field in payload.iterfind(f".//{{{SD}}}node[@nodeId='garden']//{{{SD}}}numeric")
            # all='true' also brings the stored history (historicalOther): skip it here.
            if field.get("historicalOther") != "true"
        ]
        assert temperature.get("name") == "temperature"
        assert temperature.get("unit") == "°C"
        failure = payloads[-1]
        assert failure.tag == f"{{{SD}}}failure"
        error = failure.find(f"{{{SD}}}error")
        assert error is not None
        assert error.get("nodeId") == "shed"
        assert "1-Wire sensor 28-000000000001 not found" in (error.text or "")

        # A pulsed output: on when set, off by itself, each change visible in a readout.
        answer = await control(owner, hub.jid, "gate", "<boolean name='state' value='true'/>")
        assert isinstance(answer, Element)
        assert answer.tag == f"{{{CTRL}}}setResponse"
        assert (await read_node(owner, hub.jid, "gate", 2))["state"] == "true"
        async with asyncio.timeout(10):
            seqnr = 3
            while (await read_node(owner, hub.jid, "gate", seqnr))["state"] != "false":
                seqnr += 1
                await asyncio.sleep(0.1)  # a poll with a deadline, not a guess at the timing

        answer = await control(owner, hub.jid, "dimmer", "<double name='level' value='0.5'/>")
        assert isinstance(answer, Element)
        assert (await read_node(owner, hub.jid, "dimmer", 100))["level"] == "0.500"
        refused = await control(owner, hub.jid, "dimmer", "<double name='level' value='1.5'/>")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "bad-request"
        assert "above the maximum" in refused.text
        read_only = await control(owner, hub.jid, "door", "<boolean name='state' value='true'/>")
        assert isinstance(read_only, IqFailure)
        assert read_only.condition == "feature-not-implemented"
        await hub.wait_for_log(r"control by alice@localhost/gpio: dimmer.level = 0.5 done")
    finally:
        if owner is not None:
            await owner.disconnect_and_wait()
        assert await hub.stop() == 0
    assert "Traceback" not in hub.log()
