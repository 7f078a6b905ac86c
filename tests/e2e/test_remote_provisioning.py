"""XEP-0324 provisioning on a remote hub's nodes: the front hub narrows them as its own.

Two real hubd processes on one Prosody: the garage hub (a serial ``weather``
on a pseudo-terminal, a ``door`` input, a ``light`` output) lists the house
hub as a controller; the house hub names the garage in ``remotes:`` and asks a
provisioning server (a plain slixmpp client, as in ``test_provisioning.py``)
about everyone its lists do not name.  The server narrows dora to reading the
garage's weather temperature and to setting the garage light's state: every
path to the garage (readout, set, browse, chat, ad-hoc, events) gives her
those and nothing else.  Its answer also names ``<node nodeId='door'/>``
without a ``sourceId``: the house's own door (it has none), never the garage's.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, iq, readout
from pty_device import Pty
from remote_hubs import plugged, remote_hub, remotes_yaml
from slixmpp import Message
from test_provisioning import PROV, ProvisioningServer, _fields_by_node
from test_remotes import _command, _say, garage_light
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

EV = "urn:xmpp:iot:events"
DORA = "dora@localhost"

#: What the provisioning server says of dora: two garage nodes, one field, one parameter.
READ_NARROWED = "<node nodeId='weather' sourceId='garage'/><node nodeId='door'/>" + (
    "<field name='temperature'/>"
)
CONTROL_NARROWED = "<node nodeId='light' sourceId='garage'/><parameter name='state'/>"


def garage_devices(port: Path) -> str:
    return f"""
  - id: weather
    name: Garage weather
    driver: serial.lines
    port: {port}
    format: json
  - id: door
    name: Garage door
    driver: gpio.input
    pin: 5
  - id: light
    name: Garage light
    driver: gpio.output
    pin: 6
"""


class RecordingServer(ProvisioningServer):
    """The test's provisioning server, keeping the questions the hub asked as sent."""

    def __init__(self, client: TestClient) -> None:
        self.questions: list[Element] = []
        super().__init__(client)

    def _answer(self, stanza: Any) -> None:
        self.questions.extend(c for c in stanza.xml if c.tag.startswith(f"{{{PROV}}}"))
        super()._answer(stanza)


@pytest.fixture
async def provisioning(prosody: ProsodyServer) -> AsyncIterator[RecordingServer]:
    prosody.register("prov", "provpass")
    client = await connect_client(prosody, "prov", "provpass", resource="server")
    server = RecordingServer(client)
    server.rules[DORA] = {"canRead": True, "canControl": True}
    server.narrow[(DORA, "canRead")] = READ_NARROWED
    server.narrow[(DORA, "canControl")] = CONTROL_NARROWED
    yield server
    await client.disconnect_and_wait()


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[Pty]:
    with plugged(tmp_path / "ttyGARAGE") as pty:
        yield pty


@pytest.fixture
async def garage(prosody: ProsodyServer, tmp_path: Path, device: Pty) -> AsyncIterator[HubdProcess]:
    """The remote hub, its weather holding a value: the house hub may control it."""
    hub = remote_hub(
        prosody,
        tmp_path / "garage",
        garage_devices(device.link),
        {"owners": [prosody.jid("alice")], "controllers": [prosody.jid("hub")]},
        verbose=True,
    )
    async with hub.running(r"node weather is (back )?online"):
        await hub.wait_for_log(r"connected to ")
        device.write(b'{"temperature": 20.5, "humidity": 50}\n')
        await hub.wait_for_log(r"line b'\{\"temperature\": 20\.5")
        yield hub


@pytest.fixture
async def house(
    prosody: ProsodyServer, tmp_path: Path, garage: HubdProcess, provisioning: RecordingServer
) -> AsyncIterator[HubdProcess]:
    """The front hub: its lists do not name dora, its provisioning server does."""
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        provisioning=str(provisioning.client.boundjid),
        verbose=True,
        extra_config=remotes_yaml("garage", garage.jid),
    )
    async with front.running(r"remote garage \S+ online: 3 node\(s\)"):
        yield front


@pytest.fixture
async def dora(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """A person the lists do not name: the provisioning server decides (her own account)."""
    prosody.register("dora", "dorapass")
    client = await connect_client(prosody, "dora", "dorapass", resource="phone")
    yield client
    await client.disconnect_and_wait()


def _set(node: str, source: str, name: str = "state", value: str = "true") -> str:
    return (
        f"<set xmlns='{CTRL}'><node nodeId='{node}' sourceId='{source}'/>"
        f"<boolean name='{name}' value='{value}'/></set>"
    )


async def test_reads_sets_and_browse_are_narrowed_on_the_garage(
    house: HubdProcess,
    garage: HubdProcess,
    dora: TestClient,
    alice: TestClient,
    provisioning: RecordingServer,
) -> None:
    _, payloads = await readout(dora, house.jid, f"<req xmlns='{SD}' seqnr='1' all='true'/>")
    # The garage's weather, its temperature only; the light's state (she may set it).
    assert _fields_by_node(payloads) == {"weather": {"temperature"}, "light": {"state"}}
    assert {n.get("sourceId") for p in payloads for n in p.iter(f"{{{SD}}}node")} == {"garage"}
    _, payloads = await readout(
        dora,
        house.jid,
        f"<req xmlns='{SD}' seqnr='2' momentary='true'>"
        "<node nodeId='weather' sourceId='garage'/></req>",
    )
    assert _fields_by_node(payloads) == {"weather": {"temperature"}}
    for node, source in (("door", "garage"), ("porch-light", "gpio")):
        hidden = await iq(
            dora,
            house.jid,
            f"<req xmlns='{SD}' seqnr='3' all='true'><node nodeId='{node}' sourceId='{source}'/>"
            "</req>",
        )
        assert isinstance(hidden, IqFailure), node
        assert hidden.condition == "item-not-found", "a node left out is unknown"

    # The questions asked: about everything, once (the hub narrows from the answers).
    assert [(q.tag.rpartition("}")[2], dict(q.attrib), len(q)) for q in provisioning.questions] == [
        ("canControl", {"jid": DORA}, 0),
        ("canRead", {"jid": DORA, "all": "true"}, 0),
    ]

    done = await iq(dora, house.jid, _set("light", "garage"), "set")
    assert isinstance(done, Element), done
    assert done.tag == f"{{{CTRL}}}setResponse"
    assert await garage_light(alice, garage) == "true"
    for request, condition in (
        (_set("light", "garage", name="online"), "item-not-found"),  # a field left out
        (_set("weather", "garage"), "forbidden"),  # read only
        (_set("door", "garage"), "item-not-found"),  # a node left out
    ):
        refused = await iq(dora, house.jid, request, "set")
        assert isinstance(refused, IqFailure), request
        assert refused.condition == condition, request

    form = await iq(
        dora,
        house.jid,
        f"<getForm xmlns='{CTRL}'><node nodeId='light' sourceId='garage'/></getForm>",
    )
    assert isinstance(form, Element), form
    shown = form.findall("{jabber:x:data}field")
    assert {f.get("var") for f in shown if f.get("type") not in ("hidden", "fixed")} == {"state"}

    tree = await iq(dora, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    assert isinstance(tree, Element), tree
    assert {n.get("nodeId") for n in tree.findall(f"{{{CONC}}}node")} == {"weather", "light"}
    door = await iq(dora, house.jid, f"<getNode xmlns='{CONC}' nodeId='door' sourceId='garage'/>")
    assert isinstance(door, IqFailure)
    assert door.condition == "item-not-found"
    assert house.log().count("dora@localhost is controller on some devices or fields only") == 1


async def test_chat_and_adhoc_are_narrowed_on_the_garage(
    house: HubdProcess, garage: HubdProcess, dora: TestClient, alice: TestClient
) -> None:
    # Chat does not ask the provisioning server (as for the hub's own devices): an
    # XEP-0323 request does, and chat then holds to the answer it cached.
    await readout(dora, house.jid, f"<req xmlns='{SD}' seqnr='1' momentary='true'/>")
    weather = await _say(dora, house, "read garage/weather")
    assert weather.startswith("Garage weather (garage): temperature 20.5"), weather
    assert "humidity" not in weather
    missing = await _say(dora, house, "read garage/door")
    assert missing.startswith("garage has no device 'door'"), missing
    assert "garage/door" not in missing
    assert await _say(dora, house, "set garage/light on") == "garage/light: state on"
    assert await garage_light(alice, garage) == "true"
    assert (await _say(dora, house, "set garage/light online on")).startswith(
        "garage/light has no field 'online' to set"
    )
    listing = await _say(dora, house, "list")
    assert "garage/weather (Garage weather): temperature 20.5" in listing, listing
    assert "humidity" not in listing
    assert "garage/door" not in listing

    options, (kind, text) = await _command(dora, house, "read", {"device": "garage/weather"})
    assert set(options) == {"garage/weather", "garage/light"}
    assert kind == "info"
    assert text.startswith("Garage weather (garage): temperature 20.5"), text
    assert "humidity" not in text


async def test_events_on_the_garage_are_narrowed(
    house: HubdProcess, dora: TestClient, device: Pty
) -> None:
    accepted = await iq(
        dora,
        house.jid,
        f"<subscribe xmlns='{EV}' seqnr='5'><node nodeId='weather' sourceId='garage'/></subscribe>",
    )
    assert isinstance(accepted, Element), accepted
    await house.wait_for_log(r"subscribed at remote garage to weather")
    refused = await iq(
        dora,
        house.jid,
        f"<subscribe xmlns='{EV}' seqnr='6'><node nodeId='door' sourceId='garage'/></subscribe>",
    )
    assert isinstance(refused, IqFailure)
    assert refused.condition == "item-not-found"
    # A change of a field left out sends nothing; the next event is the temperature.
    device.write(b'{"humidity": 55}\n')
    device.write(b'{"temperature": 21.5, "humidity": 56}\n')

    def weather_event(message: Message) -> bool:
        return message.xml.find(f"{{{SD}}}fields[@seqnr='5']") is not None

    message = await dora.wait_message(weather_event, timeout=15)
    names = {c.get("name") for c in message.xml.iter() if c.get("name") is not None}
    assert names == {"temperature"}, names
    value = message.xml.find(f".//{{{SD}}}numeric[@name='temperature']")
    assert value is not None
    assert value.get("value") == "21.5"

    # All nodes: the garage nodes she may read, none of the house's own.
    everything = await iq(dora, house.jid, f"<subscribe xmlns='{EV}' seqnr='7'/>")
    assert isinstance(everything, Element), everything
    pattern = r"dora@localhost/\S+ subscribed to (.*) \(seqnr 7\)"
    found = re.search(pattern, await house.wait_for_log(pattern))
    assert found is not None
    assert set(found.group(1).split(", ")) == {"garage/weather", "garage/light"}
