"""Bluetooth LE inside a real ``hubd run`` against a real Prosody.

A recorded file (``ble: {replay: FILE}``) drives the BLE nodes end to end:
replay backend -> shared scanner -> drivers -> hub -> XEP-0323 readout by a
test client.  And with no D-Bus at all, the hub still starts: the BLE nodes
are offline with one clear message, the GPIO node works.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element

from hubd_process import HubdProcess
from iot_client import SD, readout
from xmpp_client import TestClient, connect_client

from drivers.ble.advertisement import Advertisement, encode_line
from hubd.testing.prosody import ProsodyServer

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
PVVX = "0000181a-0000-1000-8000-00805f9b34fb"
SPEC_KEY = "231d39c1d7cc1ab1aee224cd096db932"

DEVICES = f"""
  - id: porch-light
    driver: gpio.output
    pin: 17
  - id: fridge
    driver: ble.bthome
    address: "A4:C1:38:12:34:56"
  - id: secure
    driver: ble.bthome
    address: "54:48:E6:8F:80:A5"
    bindkey: {SPEC_KEY}
  - id: cellar
    driver: ble.xiaomi_pvvx
    address: "A4:C1:38:02:83:F4"
  - id: garden
    driver: ble.ruuvi
    address: "CB:B8:33:4C:88:4F"
"""
BLE_NODES = ("fridge", "secure", "cellar", "garden")


def recording(path: Path) -> Path:
    """One advertisement per device, the real payloads of the parser tests.

    They start at 0.5 s: every node subscribes as hubd starts, well before.
    """

    def line(t: float, address: str, rssi: int, **data: dict[object, str]) -> str:
        advert = Advertisement(
            address=address,
            rssi=rssi,
            service_data={k: bytes.fromhex(v) for k, v in data.get("sd", {}).items()},  # type: ignore[misc]
            manufacturer_data={k: bytes.fromhex(v) for k, v in data.get("md", {}).items()},  # type: ignore[misc]
        )
        return encode_line(t, advert) + "\n"

    path.write_text(
        line(0.5, "A4:C1:38:12:34:56", -61, sd={BTHOME: "40015c020a0903bf13"})
        + line(0.6, "54:48:E6:8F:80:A5", -70, sd={BTHOME: "41e445f3c9962b332211006c7c4519"})
        + line(0.7, "A4:C1:38:02:83:F4", -34, sd={PVVX: "f4830238c1a4a9066911b60b58f70d"})
        + line(
            0.8,
            "CB:B8:33:4C:88:4F",
            -75,
            md={0x0499: "0512FC5394C37C0004FFFC040CAC364200CDCBB8334C884F"},
        )
    )
    return path


def fields_of(payloads: list[Element], node_id: str) -> dict[str, Element]:
    found: dict[str, Element] = {}
    for payload in payloads:
        for node in payload.findall(f"{{{SD}}}node"):
            if node.get("nodeId") == node_id:
                for stamp in node.findall(f"{{{SD}}}timestamp"):
                    found.update({field.get("name", ""): field for field in stamp})
    return found


async def read_node(client: TestClient, jid: str, node_id: str) -> list[Element]:
    _, payloads = await readout(
        client, jid, f"<req xmlns='{SD}' seqnr='1' all='true'><node nodeId='{node_id}'/></req>"
    )
    return payloads


async def test_a_recording_drives_ble_nodes_to_an_xmpp_readout(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    replay = recording(tmp_path / "adverts.jsonl")
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        devices=DEVICES,
        verbose=True,
        extra_config=f"ble:\n  replay: {replay}\n",
    )
    hub.start()
    alice = None
    try:
        for node in BLE_NODES:
            await hub.wait_for_log(rf"node {node} is online")
        await hub.wait_for_log(r"connected to ")
        assert "bleak" not in hub.log()
        alice = await connect_client(prosody, "alice", "alicepass", resource="ble")

        fields = fields_of(await read_node(alice, hub.jid, "fridge"), "fridge")
        temperature = fields["temperature"]
        assert temperature.tag == f"{{{SD}}}numeric"
        assert (temperature.get("value"), temperature.get("unit")) == ("23.14", "°C")
        assert (fields["battery"].get("value"), fields["battery"].get("unit")) == ("92", "%")
        assert (fields["rssi"].get("value"), fields["rssi"].get("unit")) == ("-61", "dBm")
        assert fields["last_seen"].tag == f"{{{SD}}}dateTime"
        assert fields["online"].get("value") == "true"

        fields = fields_of(await read_node(alice, hub.jid, "secure"), "secure")
        assert fields["temperature"].get("value") == "25.06"  # decrypted with the bindkey

        fields = fields_of(await read_node(alice, hub.jid, "cellar"), "cellar")
        assert fields["temperature"].get("value") == "17.05"
        assert fields["voltage"].get("value") == "2.998"
        assert fields["reed_switch"].get("value") == "true"

        fields = fields_of(await read_node(alice, hub.jid, "garden"), "garden")
        assert (fields["pressure"].get("value"), fields["pressure"].get("unit")) == (
            "1000.44",
            "hPa",
        )
    finally:
        if alice is not None:
            await alice.disconnect_and_wait()
        assert await hub.stop() == 0


async def test_without_dbus_ble_nodes_are_offline_and_the_rest_works(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        devices=DEVICES,
        extra_env={"DBUS_SYSTEM_BUS_ADDRESS": f"unix:path={tmp_path}/no-such-bus"},
    )
    hub.start()
    alice = None
    try:
        reason = "no D-Bus system bus (is dbus running?): Bluetooth needs D-Bus and BlueZ"
        for node in BLE_NODES:
            await hub.wait_for_log(rf"node {node} is offline: {re.escape(reason)}")
        await hub.wait_for_log(r"connected to ")
        assert len(re.findall("Bluetooth LE is unavailable", hub.log())) == 1
        assert "Traceback" not in hub.log()

        alice = await connect_client(prosody, "alice", "alicepass", resource="ble")
        fields = fields_of(await read_node(alice, hub.jid, "porch-light"), "porch-light")
        assert fields["state"].get("value") == "false"

        payloads = await read_node(alice, hub.jid, "fridge")
        assert "temperature" not in fields_of(payloads, "fridge")
        errors = [e for p in payloads for e in p.iter(f"{{{SD}}}error")]
        assert errors, [p.tag for p in payloads]
        assert errors[0].get("nodeId") == "fridge"
        assert "no D-Bus system bus" in (errors[0].text or "")
    finally:
        if alice is not None:
            await alice.disconnect_and_wait()
        assert await hub.stop() == 0
