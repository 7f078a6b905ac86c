"""XEP-0324 provisioning: a provisioning server decides about requesters the lists do not name.

The provisioning server is a plain slixmpp client answering ``isFriend``,
``canRead`` and ``canControl`` from a table the test changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, fromstring

import pytest
from hubd_process import HubdProcess
from iot_client import CTRL, SD, IqFailure, iq, readout
from pty_device import Pty
from slixmpp import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

PROV = "urn:xmpp:iot:provisioning"
EV = "urn:xmpp:iot:events"
PORCH_ON = (
    f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><boolean name='state' value='true'/></set>"
)


class ProvisioningServer:
    """Answers the hub's questions from ``rules``: bare JID -> {question: bool}.

    ``narrow`` adds children to a yes: (bare JID, question) -> XML of
    ``<node nodeId/>``, ``<field name/>`` or ``<parameter name/>`` elements.
    """

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.rules: dict[str, dict[str, bool]] = {}
        self.narrow: dict[tuple[str, str], str] = {}
        self.asked: list[tuple[str, str]] = []
        for question in ("isFriend", "canRead", "canControl"):
            client.register_handler(
                Callback(
                    f"prov {question}",
                    MatchXPath(f"{{jabber:client}}iq/{{{PROV}}}{question}"),
                    self._answer,
                )
            )

    def _answer(self, stanza: Any) -> None:
        question = next(c for c in stanza.xml if c.tag.startswith(f"{{{PROV}}}"))
        name = question.tag.rpartition("}")[2]
        jid = question.get("jid", "")
        self.asked.append((name, jid))
        result = self.rules.get(jid, {}).get(name, False)
        reply = stanza.reply(clear=True)
        response = Element(f"{{{PROV}}}{name}Response", {"jid": jid, "result": str(result).lower()})
        if result and (children := self.narrow.get((jid, name))):
            response.extend(fromstring(f"<x xmlns='{PROV}'>{children}</x>"))
        reply.xml.append(response)
        reply.send()


@pytest.fixture
async def provisioning(prosody: ProsodyServer) -> AsyncIterator[ProvisioningServer]:
    prosody.register("prov", "provpass")
    client = await connect_client(prosody, "prov", "provpass", resource="server")
    yield ProvisioningServer(client)
    await client.disconnect_and_wait()


@pytest.fixture
async def hub(
    prosody: ProsodyServer, tmp_path: Path, provisioning: ProvisioningServer
) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(
        tmp_path / "hubd", prosody, provisioning=str(provisioning.client.boundjid)
    ).running() as process:
        yield process


async def test_the_provisioning_server_decides_and_is_cached_until_cleared(
    hub: HubdProcess, provisioning: ProvisioningServer, prosody: ProsodyServer
) -> None:
    provisioning.rules["mallory@localhost"] = {"canRead": True, "canControl": False}
    mallory = await connect_client(prosody, "mallory", "mallorypass", resource="prov")
    try:
        _, payloads = await readout(
            mallory, hub.jid, f"<req xmlns='{SD}' seqnr='1'><node nodeId='porch-light'/></req>"
        )
        assert payloads[-1].get("done") == "true"
        assert provisioning.asked == [
            ("canControl", "mallory@localhost"),
            ("canRead", "mallory@localhost"),
        ]
        refused = await iq(mallory, hub.jid, PORCH_ON, "set")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "forbidden"
        assert len(provisioning.asked) == 2, "the answer was cached"

        # The server changes its mind and clears the hub's cache.
        provisioning.rules["mallory@localhost"]["canControl"] = True
        cleared = await iq(provisioning.client, hub.jid, f"<clearCache xmlns='{PROV}'/>", "set")
        assert isinstance(cleared, Element)
        assert cleared.tag == f"{{{PROV}}}clearCacheResponse"
        done = await iq(mallory, hub.jid, PORCH_ON, "set")
        assert isinstance(done, Element)
        assert done.tag == f"{{{CTRL}}}setResponse"
        await hub.wait_for_log(r"control by mallory@localhost/prov: porch-light\.state = True")
    finally:
        await mallory.disconnect_and_wait()


async def test_only_the_provisioning_server_may_clear_the_cache(
    hub: HubdProcess, alice: TestClient
) -> None:
    refused = await iq(alice, hub.jid, f"<clearCache xmlns='{PROV}'/>", "set")
    assert isinstance(refused, IqFailure)
    assert refused.condition == "forbidden"


async def test_presence_subscriptions_of_strangers_go_to_the_provisioning_server(
    hub: HubdProcess, provisioning: ProvisioningServer, prosody: ProsodyServer
) -> None:
    provisioning.rules["mallory@localhost"] = {"isFriend": True}
    mallory = await connect_client(prosody, "mallory", "mallorypass", resource="friend")
    try:
        mallory.send_presence(pto=JID("hub@localhost"), ptype="subscribe")
        await hub.wait_for_log(r"approved the presence subscription of mallory@localhost")
        assert ("isFriend", "mallory@localhost") in provisioning.asked
    finally:
        # Leave the shared server's rosters as they were: mallory is a stranger elsewhere.
        mallory.send_presence(pto=JID("hub@localhost"), ptype="unsubscribe")
        await mallory.plugin["xep_0199"].ping(jid=JID(hub.jid), timeout=10)
        await mallory.disconnect_and_wait()


def _fields_by_node(payloads: list[Element]) -> dict[str, set[str]]:
    """nodeId -> names of the fields a readout returned."""
    seen: dict[str, set[str]] = {}
    for element in payloads:
        for node in element.iter(f"{{{SD}}}node"):
            names = seen.setdefault(node.get("nodeId", ""), set())
            names.update(
                child.get("name", "")
                for child in node.iter()
                if child.get("name") is not None and child.tag != f"{{{SD}}}node"
            )
    return seen


async def test_a_narrowed_read_shows_only_the_devices_and_fields_the_server_named(
    hub: HubdProcess, provisioning: ProvisioningServer, prosody: ProsodyServer
) -> None:
    provisioning.rules["mallory@localhost"] = {"canRead": True, "canControl": False}
    provisioning.narrow[("mallory@localhost", "canRead")] = (
        "<node nodeId='front-door'/><field name='state'/>"
    )
    mallory = await connect_client(prosody, "mallory", "mallorypass", resource="narrow")
    try:
        _, payloads = await readout(mallory, hub.jid, f"<req xmlns='{SD}' seqnr='1' all='true'/>")
        assert _fields_by_node(payloads) == {"front-door": {"state"}}
        hidden = await iq(
            mallory,
            hub.jid,
            f"<req xmlns='{SD}' seqnr='2' all='true'><node nodeId='porch-light'/></req>",
        )
        assert isinstance(hidden, IqFailure)
        assert hidden.condition == "item-not-found", "a device left out is unknown"
        refused = await iq(mallory, hub.jid, PORCH_ON, "set")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "forbidden"
        await hub.wait_for_log(r"mallory@localhost is reader on some devices or fields only")
    finally:
        await mallory.disconnect_and_wait()


async def test_a_narrowed_control_sets_only_the_parameters_the_server_named(
    hub: HubdProcess, provisioning: ProvisioningServer, prosody: ProsodyServer
) -> None:
    provisioning.rules["mallory@localhost"] = {"canRead": False, "canControl": True}
    provisioning.narrow[("mallory@localhost", "canControl")] = (
        "<node nodeId='porch-light'/><parameter name='state'/>"
    )
    mallory = await connect_client(prosody, "mallory", "mallorypass", resource="narrow")
    try:
        done = await iq(mallory, hub.jid, PORCH_ON, "set")
        assert isinstance(done, Element), done
        assert done.tag == f"{{{CTRL}}}setResponse"
        # It may read what it may set, and nothing else.
        _, payloads = await readout(mallory, hub.jid, f"<req xmlns='{SD}' seqnr='3' all='true'/>")
        assert _fields_by_node(payloads) == {"porch-light": {"state"}}
        other = await iq(
            mallory,
            hub.jid,
            f"<set xmlns='{CTRL}'><node nodeId='front-door'/>"
            "<boolean name='state' value='true'/></set>",
            "set",
        )
        assert isinstance(other, IqFailure)
        assert other.condition == "item-not-found", "a device left out is unknown"
        online = await iq(
            mallory,
            hub.jid,
            f"<set xmlns='{CTRL}'><node nodeId='porch-light'/>"
            "<boolean name='online' value='true'/></set>",
            "set",
        )
        assert isinstance(online, IqFailure)
        assert online.condition == "item-not-found", "a field left out is unknown"
    finally:
        await mallory.disconnect_and_wait()


async def test_events_carry_only_the_fields_the_server_named(
    prosody: ProsodyServer, tmp_path: Path, provisioning: ProvisioningServer
) -> None:
    device = Pty(tmp_path / "ttyWEATHER")
    device.plug()
    hub = HubdProcess(
        tmp_path / "hubd",
        prosody,
        provisioning=str(provisioning.client.boundjid),
        devices=f"""
  - id: weather
    driver: serial.lines
    port: {device.link}
    format: json
""",
        verbose=True,
    )
    # Its own account: a subscriber's presence is asked for, and the rosters
    # of the accounts other tests share must stay as they were.
    prosody.register("watcher", "watcherpass")
    provisioning.rules["watcher@localhost"] = {"canRead": True, "canControl": False}
    provisioning.narrow[("watcher@localhost", "canRead")] = "<field name='temperature'/>"
    hub.start()
    watcher = await connect_client(prosody, "watcher", "watcherpass", resource="events")
    try:
        await hub.wait_for_log(r"connected to ")
        device.write(b'{"temperature": 20.0, "humidity": 50}\n')
        await hub.wait_for_log(r"line b'\{\"temperature\": 20\.0")
        accepted = await iq(
            watcher,
            hub.jid,
            f"<subscribe xmlns='{EV}' seqnr='5'><node nodeId='weather'/></subscribe>",
        )
        assert isinstance(accepted, Element), accepted
        # A change of a field left out sends nothing; the next event is the temperature.
        device.write(b'{"humidity": 55}\n')
        device.write(b'{"temperature": 21.5, "humidity": 56}\n')
        message = await watcher.wait_message(
            lambda m: m.xml.find(f"{{{SD}}}fields[@seqnr='5']") is not None
        )
        names = {child.get("name") for child in message.xml.iter() if child.get("name") is not None}
        assert names == {"temperature"}, names
        value = message.xml.find(f".//{{{SD}}}numeric[@name='temperature']")
        assert value is not None
        assert value.get("value") == "21.5"
    finally:
        await watcher.disconnect_and_wait()
        await hub.stop()
        device.unplug()
