"""The serial drivers inside a real ``hubd run`` against a real Prosody.

The test plays the devices on pseudo-terminals; hubd opens them through symlinks, as it
would open ``/dev/serial/by-id/...``.  Unplugging closes a pty; replugging creates a new one
and re-points the symlink, the way a USB adapter comes back under another ``ttyUSBn``.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree.ElementTree import Element

from hubd_process import HubdProcess
from iot_client import CTRL, SD, iq, readout
from pty_device import Pty
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

FIXTURES = Path(__file__).parent.parent / "drivers" / "serial" / "fixtures"


def fields_of(payloads: list[Element], node_id: str) -> dict[str, Element]:
    """Every field element of ``node_id`` in a readout's payloads, by name."""
    found: dict[str, Element] = {}
    for payload in payloads:
        for node in payload.findall(f"{{{SD}}}node"):
            if node.get("nodeId") == node_id:
                for stamp in node.findall(f"{{{SD}}}timestamp"):
                    found.update({field.get("name", ""): field for field in stamp})
    return found


async def read_node(client: TestClient, jid: str, node_id: str) -> dict[str, Element]:
    _, payloads = await readout(
        client, jid, f"<req xmlns='{SD}' seqnr='1' all='true'><node nodeId='{node_id}'/></req>"
    )
    return fields_of(payloads, node_id)


async def test_serial_nodes_read_out_send_and_survive_an_unplug(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    weather = Pty(tmp_path / "usb-Arduino_Nano_5543-if00")
    meter = Pty(tmp_path / "usb-P1_Converter_Cable-if00-port0")
    weather.plug()
    meter.plug()
    devices = f"""
  - id: weather
    driver: serial.lines
    port: {weather.link}
    baudrate: 9600
    format: json
    fields:
      temperature: {{unit: "°C"}}
      humidity: {{unit: "%"}}
  - id: meter
    driver: serial.dsmr
    port: {meter.link}
"""
    hub = HubdProcess(tmp_path / "hubd", prosody, devices=devices, verbose=True)
    hub.start()
    alice = None
    try:
        await hub.wait_for_log(r"node weather is online")
        await hub.wait_for_log(r"node meter is online")
        await hub.wait_for_log(r"connected to ")
        alice = await connect_client(prosody, "alice", "alicepass", resource="serial")

        # The ports are open (pyserial dropped what came before): the devices speak.
        weather.write(b'{"temperature": 21.50, "humidity": 40}\r\n')
        meter.write((FIXTURES / "dsmr50_iskra_am550.txt").read_bytes())
        await hub.wait_for_log(r"hubd\.node\.weather: line b'\{\"temperature\": 21\.50")
        await hub.wait_for_log(r"hubd\.node\.meter: telegram ISK5")

        fields = await read_node(alice, hub.jid, "weather")
        temperature = fields["temperature"]
        assert temperature.tag == f"{{{SD}}}numeric"
        assert (temperature.get("value"), temperature.get("unit")) == ("21.50", "°C")
        assert fields["humidity"].get("value") == "40"
        assert fields["errors"].get("value") == "0"
        assert fields["online"].get("value") == "true"

        fields = await read_node(alice, hub.jid, "meter")
        energy = fields["energy_delivered_tariff1"]
        assert (energy.get("value"), energy.get("unit")) == ("3432.829", "kWh")
        assert fields["voltage_l1"].get("value") == "236.7"

        # send: XEP-0325 writes one line to the device.
        answer = await iq(
            alice,
            hub.jid,
            f"<set xmlns='{CTRL}'><node nodeId='weather'/>"
            f"<string name='send' value='LED ON'/></set>",
            "set",
        )
        assert isinstance(answer, Element)
        assert answer.tag == f"{{{CTRL}}}setResponse"
        await weather.wait_received(b"LED ON\n")
        send = (await read_node(alice, hub.jid, "weather"))["send"]
        assert (send.get("value"), send.get("writable")) == ("LED ON", "true")

        # Garbage is counted, the node stays online.
        weather.write(b"\x00\xff garbage {{{\n")
        await hub.wait_for_log(r"hubd\.node\.weather: dropped")
        fields = await read_node(alice, hub.jid, "weather")
        assert fields["errors"].get("value") == "1"
        assert fields["online"].get("value") == "true"

        # Unplug: offline, logged once; replug: online again, fresh values.
        hub.mark()
        weather.unplug()
        await hub.wait_for_log(r"node weather is offline: .*unplugged")
        fields = await read_node(alice, hub.jid, "meter")
        assert fields["online"].get("value") == "true", "the other node is unaffected"
        weather.plug()
        await hub.wait_for_log(r"node weather is back online", timeout=20)
        weather.write(b'{"temperature": 22.75, "humidity": 41}\n')
        await hub.wait_for_log(r"line b'\{\"temperature\": 22\.75")
        fields = await read_node(alice, hub.jid, "weather")
        assert fields["temperature"].get("value") == "22.75"
        assert fields["online"].get("value") == "true"
        assert len([line for line in hub.log().splitlines() if "is offline" in line]) == 1
        log = hub.log()
        assert " ERROR " not in log
        # pyserial-asyncio-fast logs, at DEBUG with a traceback, that it could not flush the
        # port of an unplugged device; that one is expected, any other would be a bug.
        assert log.count("Traceback") == log.count("Failed to flush serial connection")
    finally:
        if alice is not None:
            await alice.disconnect_and_wait()
        assert await hub.stop() == 0
        weather.unplug()
        meter.unplug()
