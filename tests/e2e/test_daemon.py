"""The daemon end to end: a real ``hubd run`` process and a real Prosody."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

from hubd_process import HubdProcess
from slixmpp import JID
from slixmpp.exceptions import IqError
from xmpp_client import TestClient, connect_client

from hubd.core.omemo_settings import omemo_installed
from hubd.testing.prosody import ProsodyServer, find_free_port

EXPECTED_FEATURES = {
    "http://jabber.org/protocol/disco#info",
    "jabber:x:data",
    "http://jabber.org/protocol/caps",
    "urn:xmpp:ping",
    "urn:xmpp:iot:sensordata",
    "urn:xmpp:iot:control",
    "urn:xmpp:iot:concentrators",
    "urn:xmpp:iot:events",
    "http://jabber.org/protocol/commands",
}
if omemo_installed():  # OMEMO on by default: 0.3's device lists, EME, and the pubsub plugin's
    EXPECTED_FEATURES |= {
        "eu.siacs.conversations.axolotl.devicelist+notify",
        "urn:xmpp:eme:0",
        "urn:xmpp:forward:0",
        "http://jabber.org/protocol/shim",
        "http://jabber.org/protocol/shim#SubID",
    }


async def disco_features(client: TestClient, jid: str) -> tuple[set[str], list[tuple[str, str]]]:
    info = await client.plugin["xep_0030"].get_info(jid=JID(jid), timeout=10)
    query = info["disco_info"]
    identities = [(i[0], i[1]) for i in query["identities"]]
    return set(query["features"]), identities


async def test_hub_connects_and_answers_disco_info(hubd: HubdProcess, alice: TestClient) -> None:
    features, identities = await disco_features(alice, hubd.jid)
    assert features == EXPECTED_FEATURES
    assert identities == [("client", "bot")]


async def test_presence_carries_caps_and_status_and_strangers_are_refused(
    hubd: HubdProcess, prosody: ProsodyServer
) -> None:
    owner = await connect_client(prosody, "alice", "alicepass", resource="presence")
    stranger = await connect_client(prosody, "mallory", "mallorypass", resource="presence")
    try:
        # Start from no subscription, whatever earlier tests on this server left:
        # an existing one is answered by the server itself, never asked of the hub.
        for client in (owner, stranger):
            with contextlib.suppress(IqError):  # item-not-found: nothing to undo
                await client.update_roster(JID("hub@localhost"), subscription="remove", timeout=10)
        loop = asyncio.get_running_loop()
        available: asyncio.Future[object] = loop.create_future()
        refused: asyncio.Future[object] = loop.create_future()

        def on_owner_presence(presence: object) -> None:
            p = presence  # slixmpp Presence
            if p["from"].bare == "hub@localhost" and not available.done():  # type: ignore[index]
                available.set_result(p)

        stranger_saw: list[str] = []

        def on_stranger_presence(presence: object) -> None:
            if presence["from"].bare != "hub@localhost":  # type: ignore[index]
                return
            stranger_saw.append(presence["type"])  # type: ignore[index]
            # The hub answers a refused request with unsubscribed + unavailable;
            # Prosody passes on the unavailable.
            if presence["type"] == "unavailable" and not refused.done():  # type: ignore[index]
                refused.set_result(presence)

        owner.add_event_handler("presence_available", on_owner_presence)
        stranger.add_event_handler("presence", on_stranger_presence)
        owner.send_presence(pto="hub@localhost", ptype="subscribe")
        stranger.send_presence(pto="hub@localhost", ptype="subscribe")
        presence = await asyncio.wait_for(available, 10)
        assert presence["status"] == "2 devices"  # type: ignore[index]
        caps = presence.xml.find("{http://jabber.org/protocol/caps}c")  # type: ignore[attr-defined]
        assert caps is not None
        assert caps.get("hash") == "sha-1"
        await asyncio.wait_for(refused, 10)
        assert "available" not in stranger_saw
        assert stranger.client_roster["hub@localhost"]["subscription"] == "none"
        # The hub logs right after it answers, so the log may trail the stanzas.
        await hubd.wait_for_log("approved the presence subscription of alice@localhost")
        await hubd.wait_for_log("refused the presence subscription of mallory@localhost")
    finally:
        await owner.disconnect_and_wait()
        await stranger.disconnect_and_wait()


async def test_sigterm_sends_unavailable_and_exits_cleanly(
    hubd: HubdProcess, prosody: ProsodyServer
) -> None:
    owner = await connect_client(prosody, "alice", "alicepass", resource="sigterm")
    try:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[None] = loop.create_future()
        gone: asyncio.Future[None] = loop.create_future()

        def on_presence(presence: object) -> None:
            if presence["from"].bare != "hub@localhost":  # type: ignore[index]
                return
            kind = presence["type"]  # type: ignore[index]
            target = gone if kind == "unavailable" else seen
            if not target.done():
                target.set_result(None)

        owner.add_event_handler("presence", on_presence)
        owner.send_presence(pto="hub@localhost", ptype="subscribe")
        await asyncio.wait_for(seen, 10)
        assert await hubd.stop() == 0
        await asyncio.wait_for(gone, 10)
        assert "hubd stopped" in hubd.log()
        assert "Traceback" not in hubd.log()
    finally:
        await owner.disconnect_and_wait()


async def test_reconnects_after_the_server_restarts(
    restartable_prosody: ProsodyServer, tmp_path: Path
) -> None:
    hub = HubdProcess(tmp_path / "hubd", restartable_prosody)
    hub.start()
    try:
        await hub.wait_for_log(r"connected to ")
        hub.mark()
        await asyncio.to_thread(restartable_prosody.restart)
        await hub.wait_for_log(r"lost the connection to .*; reconnecting")
        await hub.wait_for_log(r"connected to ", timeout=30)
        client = await connect_client(restartable_prosody, "alice", "alicepass")
        try:
            features, _ = await disco_features(client, hub.jid)
            assert "urn:xmpp:ping" in features
        finally:
            await client.disconnect_and_wait()
        assert "Traceback" not in hub.log()
    finally:
        await hub.stop()


async def test_unreachable_server_logs_one_line_and_retries_with_backoff(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    hub = HubdProcess(tmp_path / "hubd", prosody, port=find_free_port(), verbose=True)
    hub.start()
    try:
        text = await hub.wait_for_log(r"next connection attempt in", count=3, timeout=30)
        delays = [float(d) for d in re.findall(r"next connection attempt in ([\d.]+) s", text)]
        assert delays[0] < delays[2], "the delay grows"
        assert all(d >= 0.5 for d in delays), "never a tight loop"
        assert len(re.findall(r"WARNING.*cannot connect to", text)) == 1
        assert "Traceback" not in text
    finally:
        assert await hub.stop() == 0


async def test_wrong_password_gives_one_clear_line_and_exits(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    hub = HubdProcess(tmp_path / "hubd", prosody, password="wrong-password")
    hub.start()
    status = await hub.wait_exit(timeout=20)
    log = hub.log()
    assert status == 78
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert "cannot log in: hub@localhost: the server refused the password" in errors[0]
    assert "Traceback" not in log
    assert "wrong-password" not in log


async def test_debug_log_never_carries_the_password_or_sasl(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    hub = HubdProcess(tmp_path / "hubd", prosody, verbose=True)
    hub.start()
    try:
        await hub.wait_for_log(r"connected to ")
        assert hub.proc is not None
        cmdline = await asyncio.to_thread(Path(f"/proc/{hub.proc.pid}/cmdline").read_bytes)
        assert b"hubpass" not in cmdline
    finally:
        await hub.stop()
    log = hub.log()
    assert "SEND" in log or "RECV" in log, "debug logging of stanzas is on"
    assert "hubpass" not in log
    assert "xmpp-sasl" not in log
