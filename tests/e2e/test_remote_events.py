"""Event subscriptions on a remote hub's node, through the front hub (``remotes:``).

Two real hubd processes on one Prosody: the garage hub has a serial device
on a pseudo-terminal (``weather``) and lists the house hub as a reader; the
house hub names the garage in ``remotes:``.  People subscribe at the house to
``nodeId='weather' sourceId='garage'``; the house subscribes at the garage as
itself and hands the garage's events on from its own event engine.  Every
wait is on a message or a log line, with a timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import SD, IqFailure, field_values, iq
from pty_device import Pty
from remote_hubs import plugged, remote_hub, remotes_yaml
from slixmpp import Message
from test_remotes import _command
from xmpp_client import TestClient

from hubd.testing.prosody import ProsodyServer

EV = "urn:xmpp:iot:events"


def garage_devices(port: Path) -> str:
    return f"""
  - id: weather
    name: Garage weather
    driver: serial.lines
    port: {port}
    format: json
    fields:
      temperature: {{unit: "°C"}}
"""


#: The house's own device: bob reads it (a device grant), nothing else.
HOUSE_DEVICES = """
  - id: porch-light
    driver: gpio.output
    pin: 17
    access: {readers: [bob@localhost]}
"""


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[Pty]:
    """The garage's serial device on a pseudo-terminal."""
    with plugged(tmp_path / "ttyGARAGE") as pty:
        yield pty


@pytest.fixture
async def garage(prosody: ProsodyServer, tmp_path: Path, device: Pty) -> AsyncIterator[HubdProcess]:
    """The remote hub, running, its device online: the house hub may read it."""
    hub = remote_hub(
        prosody,
        tmp_path / "garage",
        garage_devices(device.link),
        {"owners": [prosody.jid("alice")], "readers": [prosody.jid("hub")]},
        verbose=True,
    )
    async with hub.running(r"node weather is (back )?online"):
        await hub.wait_for_log(r"connected to ")
        yield hub


@pytest.fixture
async def house(
    prosody: ProsodyServer, tmp_path: Path, garage: HubdProcess
) -> AsyncIterator[HubdProcess]:
    """The front hub: alice owns it, carol may read the garage's nodes (its grant)."""
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        devices=HOUSE_DEVICES,
        access_lists={"owners": [prosody.jid("alice")]},
        verbose=True,
        extra_config=remotes_yaml(
            "garage", garage.jid, access=f"{{readers: [{prosody.jid('carol')}]}}"
        ),
    )
    async with front.running(r"remote garage \S+ online: 1 node\(s\)"):
        yield front


async def _subscribe(client: TestClient, hub: HubdProcess, seqnr: int) -> Element | IqFailure:
    return await iq(
        client,
        hub.jid,
        f"<subscribe xmlns='{EV}' seqnr='{seqnr}'>"
        "<node nodeId='weather' sourceId='garage'/><field name='temperature'/></subscribe>",
    )


async def _field(client: TestClient, seqnr: int, name: str, value: str) -> Element:
    """The event of ``seqnr`` where ``name`` is ``value`` (earlier ones are passed)."""

    def wanted(message: Message) -> bool:
        return any(
            c.tag == f"{{{SD}}}fields"
            and c.get("seqnr") == str(seqnr)
            and field_values(c).get("weather", {}).get(name) == value
            for c in message.xml
        )

    message = await client.wait_message(wanted, timeout=15)
    fields = message.xml.find(f"{{{SD}}}fields")
    assert fields is not None
    return fields


async def _temperature(client: TestClient, seqnr: int, value: str) -> Element:
    """The event of ``seqnr`` carrying ``value`` (earlier ones, e.g. online, are passed)."""

    def wanted(message: Message) -> bool:
        xml: Element = message.xml
        return any(
            c.tag == f"{{{SD}}}fields"
            and c.get("seqnr") == str(seqnr)
            and field_values(c).get("weather", {}).get("temperature") == value
            for c in xml
        )

    message = await client.wait_message(wanted, timeout=15)
    fields = message.xml.find(f"{{{SD}}}fields")
    assert fields is not None
    return fields


async def test_remote_events_reach_the_subscriber_and_resume_after_a_restart(
    house: HubdProcess, garage: HubdProcess, device: Pty, alice: TestClient, carol: TestClient
) -> None:
    accepted = await _subscribe(alice, house, 7)
    assert isinstance(accepted, Element), accepted
    assert accepted.tag == f"{{{SD}}}accepted"
    assert accepted.get("seqnr") == "7"
    await house.wait_for_log(r"subscribed at remote garage to weather")
    # One subscription per subscriber and node: carol (the garage's grant) follows online.
    online = await iq(
        carol,
        house.jid,
        f"<subscribe xmlns='{EV}' seqnr='70'>"
        "<node nodeId='weather' sourceId='garage'/><field name='online'/></subscribe>",
    )
    assert isinstance(online, Element), online

    device.write(b'{"temperature": 21.5}\n')
    fields = await _temperature(alice, 7, "21.5")
    node = fields.find(f"{{{SD}}}node")
    assert node is not None
    assert (node.get("nodeId"), node.get("sourceId")) == ("weather", "garage")
    assert fields.get("done") == "true"

    # The garage restarted: the house subscribes there again, events resume.
    house.mark()
    await garage.stop()
    await house.wait_for_log(r"remote garage \S+ offline")
    await _field(carol, 70, "online", "false")  # the garage gone: its node is offline here
    garage.mark()
    garage.start()
    await garage.wait_for_log(r"node weather is (back )?online")
    await house.wait_for_log(r"subscribed at remote garage to weather")
    await _field(carol, 70, "online", "true")
    device.write(b'{"temperature": 22.5}\n')
    await _temperature(alice, 7, "22.5")
    assert house.log().count("offline: the remote hub went offline") == 1


async def test_unsubscribe_ends_the_subscription_at_the_remote(
    house: HubdProcess, garage: HubdProcess, alice: TestClient, carol: TestClient
) -> None:
    assert isinstance(await _subscribe(alice, house, 8), Element)
    assert isinstance(await _subscribe(carol, house, 9), Element)  # the remote's grant
    assert house.log().count("subscribed at remote garage to weather") == 1  # once per node
    await iq(alice, house.jid, f"<unsubscribe xmlns='{EV}' seqnr='8'/>")
    assert "unsubscribed at remote" not in house.log()  # carol still subscribes
    await iq(carol, house.jid, f"<unsubscribe xmlns='{EV}' seqnr='9'/>")
    await house.wait_for_log(r"unsubscribed at remote garage from weather")
    await garage.wait_for_log(r"unsubscribed from weather")


async def test_strangers_and_readers_without_a_grant_are_refused(
    house: HubdProcess, garage: HubdProcess, bob: TestClient, mallory: TestClient
) -> None:
    stranger = await _subscribe(mallory, house, 10)
    assert isinstance(stranger, IqFailure)
    assert stranger.condition == "forbidden"
    # bob reads the porch light here, nothing of the garage: it does not exist for him.
    reader = await _subscribe(bob, house, 11)
    assert isinstance(reader, IqFailure)
    assert reader.condition == "item-not-found"
    assert "weather" in reader.text
    unknown = await iq(
        bob,
        house.jid,
        f"<subscribe xmlns='{EV}' seqnr='12'><node nodeId='attic' sourceId='garage'/></subscribe>",
    )
    assert isinstance(unknown, IqFailure)
    assert "subscribed at remote" not in house.log()
    assert "subscribed to weather" not in garage.log()


async def _say(client: TestClient, hub: HubdProcess, text: str) -> str:
    """Type ``text`` to ``hub`` in chat; return its reply."""
    client.make_message(mto=hub.jid, mbody=text, mtype="chat").send()
    reply = await client.wait_message(
        lambda m: m["from"].bare == hub.jid.split("/")[0] and bool(m["body"])
    )
    body: str = reply["body"]
    return body


async def test_chat_watch_of_a_remote_device(
    house: HubdProcess, device: Pty, alice: TestClient
) -> None:
    reply = await _say(alice, house, "watch garage/weather temperature > 25")
    assert reply.startswith("Watching garage/weather (temperature > 25)"), reply
    assert "subscribed at remote garage to weather" in house.log()
    device.write(b'{"temperature": 21.0}\n')  # not above 25: no line
    device.write(b'{"temperature": 26.0}\n')
    line = await alice.wait_message(lambda m: "temperature" in (m["body"] or ""), timeout=15)
    assert line["body"] == "garage/weather: temperature 26.0 °C", line["body"]
    assert (await _say(alice, house, "watching")).count("garage/weather") == 1
    assert await _say(alice, house, "unwatch garage/weather") == "Stopped watching garage/weather."
    await house.wait_for_log(r"unsubscribed at remote garage from weather")
    refused = await _say(alice, house, "watch garage/attic")
    assert refused.startswith("garage has no device 'attic'"), refused


async def test_adhoc_watch_form_lists_and_watches_a_remote_device(
    house: HubdProcess, device: Pty, carol: TestClient
) -> None:
    """XEP-0050 "Watch a device": garage/weather offered after the house's own, then watched."""
    # carol may read the garage's nodes (remotes[].access), not the house's porch light.
    options, (kind, text) = await _command(
        carol, house, "watch", {"device": "garage/weather", "condition": "temperature > 25"}
    )
    assert options == ["garage/weather"], options
    assert kind == "info", text
    assert text.startswith("Watching garage/weather (temperature > 25)"), text
    await house.wait_for_log(r"subscribed at remote garage to weather")
    device.write(b'{"temperature": 26.0}\n')
    line = await carol.wait_message(lambda m: "temperature" in (m["body"] or ""), timeout=15)
    assert line["body"] == "garage/weather: temperature 26.0 °C", line["body"]


async def test_subscribe_to_all_nodes_covers_the_remotes_nodes(
    house: HubdProcess, device: Pty, alice: TestClient, bob: TestClient
) -> None:
    """No <node>: the house's own nodes and the garage's the asker may read, with sourceId."""
    accepted = await iq(alice, house.jid, f"<subscribe xmlns='{EV}' seqnr='9'/>")
    assert isinstance(accepted, Element), accepted
    await house.wait_for_log(r"subscribed to porch-light, garage/weather \(seqnr 9\)")
    await house.wait_for_log(r"subscribed at remote garage to weather")
    # bob may read the porch light only (a device grant): no garage node for him.
    house.mark()
    mine = await iq(bob, house.jid, f"<subscribe xmlns='{EV}' seqnr='10'/>")
    assert isinstance(mine, Element), mine
    await house.wait_for_log(r"bob@localhost/\S+ subscribed to porch-light \(seqnr 10\)")
    device.write(b'{"temperature": 23.5}\n')
    fields = await _temperature(alice, 9, "23.5")
    node = fields.find(f"{{{SD}}}node")
    assert node is not None
    assert (node.get("nodeId"), node.get("sourceId")) == ("weather", "garage")


async def test_req_true_gives_a_remote_nodes_current_value(
    house: HubdProcess, garage: HubdProcess, device: Pty, alice: TestClient, carol: TestClient
) -> None:
    """req='true': the house reads garage/weather at the garage and sends its value at once."""
    direct = await iq(  # alice at the garage itself: the garage has a value before the house asks
        alice,
        garage.jid,
        f"<subscribe xmlns='{EV}' seqnr='5'><node nodeId='weather'/>"
        "<field name='temperature'/></subscribe>",
    )
    assert isinstance(direct, Element), direct
    device.write(b'{"temperature": 24.5}\n')
    await _temperature(alice, 5, "24.5")
    assert "subscribed at remote" not in house.log()  # the house has no value of its own
    accepted = await iq(
        carol,
        house.jid,
        f"<subscribe xmlns='{EV}' seqnr='11' req='true'>"
        "<node nodeId='weather' sourceId='garage'/><field name='temperature'/></subscribe>",
    )
    assert isinstance(accepted, Element), accepted
    fields = await _temperature(carol, 11, "24.5")
    node = fields.find(f"{{{SD}}}node")
    assert node is not None
    assert (node.get("nodeId"), node.get("sourceId")) == ("weather", "garage")
