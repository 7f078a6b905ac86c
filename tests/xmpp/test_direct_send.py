"""hubd/xmpp/direct_send.py: writing now keeps XEP-0198 counting and stanza order.

A slixmpp client with stream management (the hub's side, account ``hub``)
sends to Bob, an independent client, over the session's real Prosody.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree.ElementTree import Element

from accounts import ACCOUNTS
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.direct_send import can_send_now, event_message, send_now

NS = "urn:hubd:test:direct"


class SmClient(TestClient):
    """The test client with XEP-0198, as hubd registers it."""

    def __init__(self, jid: str, password: str, **kwargs: Any) -> None:
        super().__init__(jid, password, **kwargs)
        self.register_plugin("xep_0198", {"window": 100})


def _payload(n: int) -> Element:
    return Element(f"{{{NS}}}n", {"value": str(n)})


def _value(message: Any) -> str | None:
    element = message.xml.find(f"{{{NS}}}n")
    return None if element is None else element.get("value")


async def test_a_message_written_now_is_counted_acknowledged_and_received(
    prosody: ProsodyServer, bob: TestClient
) -> None:
    hub = await connect_client(prosody, "hub", ACCOUNTS["hub"], make=SmClient)
    try:
        sm: Any = hub.plugin["xep_0198"]
        assert sm.enabled_out, "the server enables stream management"
        acked: asyncio.Queue[Any] = asyncio.Queue()
        hub.add_event_handler("stanza_acked", acked.put_nowait)
        assert can_send_now(hub)
        seq = sm.seq
        message = event_message(hub, bob.boundjid.full, "hubd-ev-1", _payload(1))
        send_now(hub, message)
        assert hub.waiting_queue.empty(), "written at once, not queued"
        assert sm.seq == seq + 1, "counted by XEP-0198 like a queued stanza"
        assert sm.unacked_queue[-1] == (seq + 1, message), "kept for a resumed stream"
        sm.request_ack()
        async with asyncio.timeout(10):  # the session's own stanzas come first
            while (await acked.get()) is not message:
                pass
        assert not sm.unacked_queue
        received = await bob.wait_message(lambda m: _value(m) is not None)
        assert received["id"] == "hubd-ev-1"
        assert received["from"] == hub.boundjid
    finally:
        await hub.disconnect_and_wait()


async def test_behind_a_queued_stanza_it_waits_its_turn(
    prosody: ProsodyServer, bob: TestClient
) -> None:
    hub = await connect_client(prosody, "hub", ACCOUNTS["hub"], make=SmClient)
    try:
        sm: Any = hub.plugin["xep_0198"]
        seq = sm.seq
        hub.make_message(mto=bob.boundjid, mbody="first").send()  # on the queue
        assert not can_send_now(hub)
        send_now(hub, event_message(hub, bob.boundjid.full, "hubd-ev-2", _payload(2)))
        first = await bob.wait_message(lambda m: m["body"] == "first" or _value(m) is not None)
        second = await bob.wait_message(lambda m: _value(m) is not None)
        assert first["body"] == "first", "the queued stanza is not passed"
        assert second["id"] == "hubd-ev-2"
        assert sm.seq == seq + 2
    finally:
        await hub.disconnect_and_wait()


async def test_before_the_session_it_falls_back_to_the_queue(prosody: ProsodyServer) -> None:
    hub = SmClient(f"{prosody.jid('hub')}/offline", ACCOUNTS["hub"], ca_file=prosody.ca_file)
    assert not can_send_now(hub), "no transport, no session"
    message = event_message(hub, prosody.jid("bob"), "hubd-ev-3", _payload(3))
    send_now(hub, message)  # held by slixmpp until a session starts, as stanza.send() is
    assert message["to"] == prosody.jid("bob")
    assert message["id"] == "hubd-ev-3"


async def test_an_asynchronous_filter_sends_through_the_queue(
    prosody: ProsodyServer, bob: TestClient
) -> None:
    hub = await connect_client(prosody, "hub", ACCOUNTS["hub"], make=SmClient)
    try:
        assert can_send_now(hub)
        seen: list[str] = []

        async def encrypt(stanza: Any) -> Any:  # as an end-to-end encryption filter would be
            seen.append(str(stanza["id"]))
            return stanza

        hub.add_filter("out_sce", encrypt)
        assert not can_send_now(hub), "slixmpp awaits an out_sce coroutine: only its queue may"
        send_now(hub, event_message(hub, bob.boundjid.full, "hubd-ev-4", _payload(4)))
        received = await bob.wait_message(lambda m: _value(m) is not None)
        assert received["id"] == "hubd-ev-4"
        assert seen == ["hubd-ev-4"], "the filter ran once, in the queue"
        hub.del_filter("out_sce", encrypt)
    finally:
        await hub.disconnect_and_wait()
