"""XEP-0324 provisioning: a provisioning server decides about requesters the lists do not name.

The provisioning server is a plain slixmpp client answering ``isFriend``,
``canRead`` and ``canControl`` from a table the test changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import CTRL, SD, IqFailure, iq, readout
from slixmpp import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

PROV = "urn:xmpp:iot:provisioning"
PORCH_ON = (
    f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><boolean name='state' value='true'/></set>"
)


class ProvisioningServer:
    """Answers the hub's questions from ``rules``: bare JID -> {question: bool}."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.rules: dict[str, dict[str, bool]] = {}
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
        reply.xml.append(
            Element(f"{{{PROV}}}{name}Response", {"jid": jid, "result": str(result).lower()})
        )
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
    process = HubdProcess(
        tmp_path / "hubd", prosody, provisioning=str(provisioning.client.boundjid)
    )
    process.start()
    await process.wait_for_log(r"connected to ")
    yield process
    await process.stop()


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
