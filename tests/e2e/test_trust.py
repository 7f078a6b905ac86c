"""Trust end to end: every entry point refuses whom it must, with the right condition.

A real hubd and a real Prosody.  Roles: alice owner, carol controller, bob
reader, mallory stranger, and dave, who is nobody hub-wide but may read one
device (``garage``) through that device's own ``access:``.  Absence of an
answer (a control in a message, a stranger's repeated chat) is proved with an
XMPP ping as the ordering barrier, never by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring
from hubd_process import DEFAULT_DEVICES, HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, field_values, iq, readout
from slixmpp import JID
from slixmpp.exceptions import IqError
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

EVENTS = "urn:xmpp:iot:events"
HUB = "hub@localhost"
DEVICES = (
    DEFAULT_DEVICES
    + """
  - id: garage
    name: Garage door
    driver: gpio.output
    pin: 22
    access:
      readers: [dave@localhost]
"""
)
PORCH_ON = (
    f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><boolean name='state' value='true'/></set>"
)


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    prosody.register("dave", "davepass")
    async with HubdProcess(tmp_path / "hubd", prosody, devices=DEVICES).running() as process:
        yield process


async def _client(prosody: ProsodyServer, user: str) -> AsyncIterator[TestClient]:
    client = await connect_client(prosody, user, f"{user}pass")
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def dave(prosody: ProsodyServer, hub: HubdProcess) -> AsyncIterator[TestClient]:
    async for client in _client(prosody, "dave"):
        yield client


async def refused(client: TestClient, xml: str, kind: str = "get") -> tuple[str, str]:
    answer = await iq(client, f"{HUB}/hubd", xml, kind)
    assert isinstance(answer, IqFailure), f"not refused: {answer}"
    return answer.type, answer.condition


async def failure(client: TestClient, xml: str, kind: str = "get") -> IqFailure:
    answer = await iq(client, f"{HUB}/hubd", xml, kind)
    assert isinstance(answer, IqFailure), f"not refused: {answer}"
    return answer


async def chat(client: TestClient, text: str) -> str:
    client.make_message(mto=HUB, mbody=text, mtype="chat").send()
    reply = await client.wait_message(lambda m: m["from"].bare == HUB and bool(m["body"]))
    body: str = reply["body"]
    return body


async def adhoc_error(client: TestClient, node: str) -> tuple[str, str]:
    with pytest.raises(IqError) as caught:
        await client.plugin["xep_0050"].send_command(JID(f"{HUB}/hubd"), node, timeout=10)
    error = caught.value.iq["error"]
    return error["type"], error["condition"]


async def barrier(client: TestClient) -> None:
    """Every stanza sent before this has been handled by the hub."""
    await client.plugin["xep_0199"].ping(jid=JID(f"{HUB}/hubd"), timeout=10)


async def porch_state(client: TestClient) -> str:
    _, payloads = await readout(
        client, f"{HUB}/hubd", f"<req xmlns='{SD}' seqnr='77'><node nodeId='porch-light'/></req>"
    )
    return field_values(payloads[0])["porch-light"]["state"]


FORBIDDEN = ("cancel", "forbidden")


async def test_every_entry_point_refuses_a_stranger(
    hub: HubdProcess, mallory: TestClient, alice: TestClient
) -> None:
    # XEP-0323: the same answer for every node, the hub's whole tree, and one that does not exist.
    for body in ("", "<node nodeId='porch-light'/>", "<node nodeId='attic'/>"):
        xml = f"<req xmlns='{SD}' seqnr='1' momentary='true'>{body}</req>"
        assert await refused(mallory, xml) == FORBIDDEN
    assert await refused(mallory, f"<cancel xmlns='{SD}' seqnr='1'/>") == FORBIDDEN
    # XEP-0325, in an IQ and in a message (no answer, nothing done).
    assert await refused(mallory, PORCH_ON, "set") == FORBIDDEN
    assert await refused(mallory, f"<getForm xmlns='{CTRL}'/>") == FORBIDDEN
    msg = mallory.make_message(mto=f"{HUB}/hubd")
    msg.xml.append(fromstring(PORCH_ON))
    msg.send()
    await barrier(mallory)
    assert await porch_state(alice) == "false"
    # XEP-0326: every command, known or not, the same.
    for command in ("getCapabilities", "getAllDataSources", "noSuchCommand"):
        answer = await failure(mallory, f"<{command} xmlns='{CONC}'/>")
        assert (answer.type, answer.condition) == FORBIDDEN
        response = answer.xml.find(f"{{{CONC}}}{command}Response")
        assert response is not None
        assert response.get("result") == "InsufficientPrivileges"
    for node in ("porch-light", "attic"):
        xml = f"<getNode xmlns='{CONC}' nodeId='{node}' sourceId='MeteringTopology'/>"
        assert await refused(mallory, xml) == FORBIDDEN
    # Events.
    subscribe = f"<subscribe xmlns='{EVENTS}' seqnr='5' momentary='true'/>"
    assert await refused(mallory, subscribe) == FORBIDDEN
    assert await refused(mallory, f"<unsubscribe xmlns='{EVENTS}' seqnr='5'/>") == FORBIDDEN
    # Ad-hoc commands: none listed, none run.
    items = await mallory.plugin["xep_0050"].get_commands(jid=JID(f"{HUB}/hubd"), timeout=10)
    assert list(items["disco_items"]["items"]) == []
    for node in ("read", "set", "status", "no-such-command"):
        assert await adhoc_error(mallory, node) == FORBIDDEN
    # Chat: one short refusal, nothing about the devices.
    assert await chat(mallory, "list") == "Not authorised."
    # Presence: the subscription request is refused (test_daemon.py checks the stanzas).
    mallory.send_presence(pto=HUB, ptype="subscribe")
    await hub.wait_for_log("refused the presence subscription of mallory@localhost")
    # Each control attempt is audited, refused; none was carried out.
    audits = [line for line in hub.log().splitlines() if "control by mallory" in line]
    assert len(audits) == 2, audits
    assert all(
        line.endswith("porch-light.state = 'true' refused: Access denied.") for line in audits
    )


async def test_a_reader_is_refused_control(
    hub: HubdProcess, bob: TestClient, alice: TestClient
) -> None:
    assert await refused(bob, PORCH_ON, "set") == FORBIDDEN
    assert await refused(
        bob, f"<getForm xmlns='{CTRL}'><node nodeId='porch-light'/></getForm>"
    ) == (FORBIDDEN)
    msg = bob.make_message(mto=f"{HUB}/hubd")
    msg.xml.append(fromstring(PORCH_ON))
    msg.send()
    await barrier(bob)
    assert await adhoc_error(bob, "set") == FORBIDDEN
    assert (await chat(bob, "set porch-light state on")).startswith("set needs control rights")
    assert await porch_state(alice) == "false"
    # ... but may read, browse and subscribe.
    assert await porch_state(bob) == "false"
    answer = await iq(bob, f"{HUB}/hubd", f"<getCapabilities xmlns='{CONC}'/>")
    assert isinstance(answer, Element)
    answer = await iq(bob, f"{HUB}/hubd", f"<subscribe xmlns='{EVENTS}' seqnr='9'/>")
    assert isinstance(answer, Element)
    audits = [line for line in hub.log().splitlines() if "control by bob" in line]
    assert len(audits) == 3, audits
    assert all(" refused: " in line for line in audits)
    assert audits[-1].endswith("set porch-light state on refused: reader may not set")


async def test_a_controller_is_refused_administration(
    hub: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    xml = f"<getNodeParametersForEdit xmlns='{CONC}' nodeId='porch-light'/>"
    answer = await failure(carol, xml)
    assert (answer.type, answer.condition) == FORBIDDEN
    response = answer.xml.find(f"{{{CONC}}}getNodeParametersForEditResponse")
    assert response is not None
    assert response.get("result") == "InsufficientPrivileges"
    owner = await iq(alice, f"{HUB}/hubd", xml)
    assert isinstance(owner, Element)
    assert owner.get("result") == "OK"
    # Control is the controller's, and audited with who, what and the result.
    done = await iq(carol, f"{HUB}/hubd", PORCH_ON, "set")
    assert isinstance(done, Element)
    await hub.wait_for_log(r"control by carol@localhost/test: porch-light\.state = True done")
    bad = f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><int name='state' value='7'/></set>"
    assert await refused(carol, bad, "set") == ("modify", "bad-request")
    await hub.wait_for_log(r"control by carol@localhost/test: porch-light\.state = '7' refused")


async def test_a_device_grant_shows_that_device_and_nothing_else(
    hub: HubdProcess, dave: TestClient
) -> None:
    # A readout of "everything" is a readout of the one device dave may read.
    _, payloads = await readout(dave, f"{HUB}/hubd", f"<req xmlns='{SD}' seqnr='1'/>")
    assert [list(field_values(p)) for p in payloads] == [["garage"]]
    # Another device is answered exactly like one that does not exist.
    hidden = await failure(dave, f"<req xmlns='{SD}' seqnr='2'><node nodeId='porch-light'/></req>")
    missing = await failure(dave, f"<req xmlns='{SD}' seqnr='3'><node nodeId='attic'/></req>")
    assert (hidden.type, hidden.condition) == (missing.type, missing.condition)
    assert (hidden.type, hidden.condition) == ("cancel", "item-not-found")
    assert hidden.text.replace("porch-light", "X") == missing.text.replace("attic", "X")
    for node in ("porch-light", "attic"):
        xml = f"<getNode xmlns='{CONC}' nodeId='{node}' sourceId='MeteringTopology'/>"
        answer = await failure(dave, xml)
        assert (answer.type, answer.condition) == ("cancel", "item-not-found")
        subscribe = f"<subscribe xmlns='{EVENTS}' seqnr='4'><node nodeId='{node}'/></subscribe>"
        assert await refused(dave, subscribe) == ("cancel", "item-not-found")
    listing = await iq(
        dave, f"{HUB}/hubd", f"<getAllNodes xmlns='{CONC}' sourceId='MeteringTopology'/>"
    )
    assert isinstance(listing, Element)
    assert [n.get("nodeId") for n in listing] == ["garage"]
    sources = await iq(dave, f"{HUB}/hubd", f"<getAllDataSources xmlns='{CONC}'/>")
    assert isinstance(sources, Element)
    assert [s.get("sourceId") for s in sources] == ["MeteringTopology", "gpio"]
    # Reading is not controlling, even of the granted device.
    garage_on = (
        f"<set xmlns='{CTRL}'><node nodeId='garage'/><boolean name='state' value='true'/></set>"
    )
    assert await refused(dave, garage_on, "set") == FORBIDDEN
    # Chat and ad-hoc commands show the same one device.
    assert (await chat(dave, "list")).splitlines() == [
        "1 device:",
        "- garage (Garage door): state off",
    ]
    assert (await chat(dave, "read porch-light")).startswith("No device 'porch-light'")
    status: Any = await dave.plugin["xep_0050"].send_command(
        JID(f"{HUB}/hubd"), "status", timeout=10
    )
    assert "porch-light" not in str(status)
    assert "garage" in str(status)
