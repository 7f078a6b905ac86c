"""SIGHUP reloads the configuration of a running ``hubd run`` without dropping its session.

The client's checks that the session stayed: an event subscription to an
unchanged node keeps delivering across the reload, readouts of unchanged nodes
keep working, and hubd's log shows no new "connected to".
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import SD, IqFailure, field_values, iq, readout
from pty_device import Pty
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

FRONT_DOOR = """
  - id: front-door
    driver: gpio.input
    pin: 27
    pull_up: true
"""


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(tmp_path / "hubd", prosody).running() as process:
        yield process


def rewrite(hub: HubdProcess, devices: str, *, header_edit: tuple[str, str] | None = None) -> None:
    """Replace the devices (and optionally a piece of the header) of hub's config file."""
    text = hub.config_file.read_text()
    header = text.split("devices:", 1)[0]
    if header_edit is not None:
        assert header_edit[0] in header
        header = header.replace(*header_edit)
    hub.config_file.write_text(header + "devices:" + devices.rstrip() + "\n")


def sighup(hub: HubdProcess) -> None:
    assert hub.proc is not None
    hub.proc.send_signal(signal.SIGHUP)


async def read_node(client: TestClient, hub: HubdProcess, node_id: str) -> dict[str, str]:
    _, payloads = await readout(
        client,
        hub.jid,
        f"<req xmlns='{SD}' seqnr='7' momentary='true'><node nodeId='{node_id}'/></req>",
    )
    values: dict[str, str] = {}
    for payload in payloads:
        values.update(field_values(payload).get(node_id, {}))
    return values


async def test_sighup_adds_and_removes_nodes_and_keeps_the_session(
    hub: HubdProcess, alice: TestClient
) -> None:
    assert await read_node(alice, hub, "front-door") == {"state": "false"}
    hub.mark()
    # porch-light goes, garage comes on the same pin (so removal must release it first),
    # front-door stays exactly as it was.
    rewrite(
        hub,
        FRONT_DOOR
        + """
  - id: garage
    name: Garage door
    driver: gpio.output
    pin: 17
    initial: true
""",
    )
    sighup(hub)
    await hub.wait_for_log(r"reloaded: \+1 -1 ~0 devices")
    await hub.wait_for_log(r"node garage is online")
    assert await read_node(alice, hub, "garage") == {"state": "true"}
    gone = await iq(
        alice, hub.jid, f"<req xmlns='{SD}' seqnr='8'><node nodeId='porch-light'/></req>"
    )
    assert isinstance(gone, IqFailure)
    assert gone.condition == "item-not-found"
    assert await read_node(alice, hub, "front-door") == {"state": "false"}
    log = hub.log()[hub._offset :]
    assert "connected to" not in log, "the XMPP session was not dropped"
    assert "lost the connection" not in log
    assert "Traceback" not in hub.log()


async def test_a_changed_device_is_restarted(hub: HubdProcess, alice: TestClient) -> None:
    hub.mark()
    rewrite(
        hub,
        FRONT_DOOR
        + """
  - id: porch-light
    name: Porch light
    driver: gpio.output
    pin: 22
    initial: true
""",
    )
    sighup(hub)
    await hub.wait_for_log(r"reloaded: \+0 -0 ~1 devices")
    await hub.wait_for_log(r"node porch-light is online")
    assert await read_node(alice, hub, "porch-light") == {"state": "true"}
    assert await read_node(alice, hub, "front-door") == {"state": "false"}
    assert "connected to" not in hub.log()[hub._offset :]


async def test_an_invalid_config_is_refused_and_the_old_one_kept(
    hub: HubdProcess, alice: TestClient
) -> None:
    hub.mark()
    rewrite(
        hub,
        FRONT_DOOR
        + """
  - id: porch-light
    driver: gpio.output
    pinn: 17
  - id: Bad Id
    driver: gpio.output
    pin: 5
""",
    )
    sighup(hub)
    await hub.wait_for_log(r"reload refused: .*config\.yaml has 3 problems")
    # The problems are logged one by one after that line: wait for the last one's hint.
    text = await hub.wait_for_log(r"did you mean 'pin'\?")
    refused = [line for line in text.splitlines() if " ERROR " in line]
    assert any("pinn: unknown key" in line for line in refused), text
    assert "reloaded:" not in hub.log()
    # Still the old configuration: porch-light (pin 17) answers, the process runs.
    assert await read_node(alice, hub, "porch-light") == {"state": "false"}
    assert hub.proc is not None
    assert hub.proc.poll() is None
    assert "Traceback" not in hub.log()


async def test_access_changes_apply_live_and_xmpp_changes_wait_for_a_restart(
    hub: HubdProcess, prosody: ProsodyServer
) -> None:
    mallory = await connect_client(prosody, "mallory", "mallorypass")
    try:
        refused = await iq(mallory, hub.jid, f"<req xmlns='{SD}' seqnr='1' momentary='true'/>")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "forbidden"
        hub.mark()
        readers = f"readers: [{prosody.jid('bob')}]"
        rewrite(
            hub,
            FRONT_DOOR,
            header_edit=(readers, f"readers: [{prosody.jid('bob')}, {prosody.jid('mallory')}]"),
        )
        # A changed server port: only a restart can apply it.
        text = re.sub(r"port: \d+", "port: 5222", hub.config_file.read_text(), count=1)
        hub.config_file.write_text(text)
        sighup(hub)
        await hub.wait_for_log(r"reloaded: \+0 -1 ~0 devices")
        log = await hub.wait_for_log(r"access lists updated")
        assert "not applied until hubd restarts: xmpp changed" in log
        assert await read_node(mallory, hub, "front-door") == {"state": "false"}
        assert "connected to" not in hub.log()[hub._offset :]
    finally:
        await mallory.disconnect_and_wait()


EV = "urn:xmpp:iot:events"


async def next_temperature(client: TestClient, seqnr: int) -> str:
    """The temperature in the next event of subscription ``seqnr``."""
    message = await client.wait_message(
        lambda m: any(c.tag == f"{{{SD}}}fields" and c.get("seqnr") == str(seqnr) for c in m.xml),
        timeout=10,
    )
    field = message.xml.find(f".//{{{SD}}}numeric[@name='temperature']")
    assert field is not None, message
    return field.get("value", "")


async def test_a_subscription_to_an_unchanged_node_keeps_delivering_across_a_reload(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient
) -> None:
    device = Pty(tmp_path / "ttyWEATHER")
    device.plug()
    weather = f"""
  - id: weather
    driver: serial.lines
    port: {device.link}
    format: json
"""
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        devices=weather + "  - id: porch-light\n    driver: gpio.output\n    pin: 17\n",
    )
    hub.start()
    try:
        await hub.wait_for_log(r"node weather is online")
        await hub.wait_for_log(r"connected to ")
        accepted = await iq(
            alice,
            hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='21'><node nodeId='weather'/></subscribe>",
        )
        assert isinstance(accepted, Element), accepted
        device.write(b'{"temperature": 21.0}\n')
        assert await next_temperature(alice, 21) == "21.0"
        hub.mark()
        rewrite(hub, weather + "  - id: garage\n    driver: gpio.output\n    pin: 17\n")
        sighup(hub)
        await hub.wait_for_log(r"reloaded: \+1 -1 ~0 devices")
        device.write(b'{"temperature": 22.5}\n')
        assert await next_temperature(alice, 21) == "22.5"
        assert await read_node(alice, hub, "garage") == {"state": "false"}
        assert "connected to" not in hub.log()[hub._offset :]
    finally:
        await hub.stop()
        device.unplug()
    assert "Traceback" not in hub.log()


async def test_a_reload_adds_a_device_of_a_bus_not_configured_before(
    hub: HubdProcess, alice: TestClient, tmp_path: Path
) -> None:
    # The hub started with GPIO devices only, so the serial driver and pyserial are
    # imported by this reload (they are loaded only for a configured device).
    device = Pty(tmp_path / "ttyNEW")
    device.plug()
    try:
        assert "weather" not in hub.config_file.read_text()
        hub.mark()
        rewrite(
            hub,
            FRONT_DOOR
            + f"""
  - id: weather
    driver: serial.lines
    port: {device.link}
    format: json
""",
        )
        sighup(hub)
        await hub.wait_for_log(r"reloaded: \+1 -1 ~0 devices")
        await hub.wait_for_log(r"node weather is online")
        accepted = await iq(
            alice,
            hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='31'><node nodeId='weather'/></subscribe>",
        )
        assert isinstance(accepted, Element), accepted
        device.write(b'{"temperature": 19.5}\n')
        assert await next_temperature(alice, 31) == "19.5"
        assert "connected to" not in hub.log()[hub._offset :]
    finally:
        device.unplug()
    assert "Traceback" not in hub.log()
