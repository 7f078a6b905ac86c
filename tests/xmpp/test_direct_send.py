"""hubd/xmpp/direct_send.py: writing now keeps XEP-0198 counting and stanza order.

A slixmpp client with stream management (the hub's side, account ``hub``)
sends to Bob, an independent client, over the session's real Prosody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from accounts import ACCOUNTS
from slixmpp.xmlstream.tostring import tostring
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.direct_send import (
    can_send_now,
    can_write_prebuilt,
    event_message,
    message_element,
    message_neutral,
    send_now,
    write_prebuilt,
)
from hubd.xmpp.prebuilt_events import MessageBuiltOnUse

NS = "urn:hubd:test:direct"


class SmClient(TestClient):
    """The test client with XEP-0198, as hubd registers it."""

    def __init__(self, jid: str, password: str, **kwargs: Any) -> None:
        super().__init__(jid, password, **kwargs)
        self.register_plugin("xep_0198", {"window": 100})


@pytest.fixture
async def hub(prosody: ProsodyServer) -> AsyncIterator[SmClient]:
    """The hub's side: connected, stream management enabled."""
    client = await connect_client(prosody, "hub", ACCOUNTS["hub"], make=SmClient)
    yield client
    await client.disconnect_and_wait()


def _payload(n: int) -> Element:
    return Element(f"{{{NS}}}n", {"value": str(n)})


def _value(message: Any) -> str | None:
    element = message.xml.find(f"{{{NS}}}n")
    return None if element is None else element.get("value")


async def test_a_message_written_now_is_counted_acknowledged_and_received(
    hub: SmClient, bob: TestClient
) -> None:
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


async def test_behind_a_queued_stanza_it_waits_its_turn(hub: SmClient, bob: TestClient) -> None:
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


async def test_before_the_session_it_falls_back_to_the_queue(prosody: ProsodyServer) -> None:
    hub = SmClient(f"{prosody.jid('hub')}/offline", ACCOUNTS["hub"], ca_file=prosody.ca_file)
    assert not can_send_now(hub), "no transport, no session"
    message = event_message(hub, prosody.jid("bob"), "hubd-ev-3", _payload(3))
    send_now(hub, message)  # held by slixmpp until a session starts, as stanza.send() is
    assert message["to"] == prosody.jid("bob")
    assert message["id"] == "hubd-ev-3"


async def test_a_prebuilt_text_is_written_then_counted_and_kept_as_its_stanza(
    hub: SmClient, bob: TestClient
) -> None:
    sm: Any = hub.plugin["xep_0198"]
    acked: asyncio.Queue[Any] = asyncio.Queue()
    hub.add_event_handler("stanza_acked", acked.put_nowait)
    assert can_write_prebuilt(hub), "only the roster's and XEP-0198's filters"
    seq = sm.seq
    message = event_message(hub, bob.boundjid.full, "hubd-ev-4", _payload(4))
    text = tostring(message.xml, xmlns=hub.default_ns, stream=hub, top_level=True)
    built: list[Any] = []
    write_prebuilt(hub, text, lambda: built.append(message) or message)
    assert built == [message], "the stanza is built once, after the write"
    assert hub.waiting_queue.empty()
    assert sm.seq == seq + 1, "counted by XEP-0198"
    kept = sm.unacked_queue[-1]
    assert kept == (seq + 1, message), "kept for a resumed stream"
    assert tostring(kept[1].xml, xmlns=hub.default_ns, stream=hub, top_level=True) == text
    sm.request_ack()
    async with asyncio.timeout(10):
        while (await acked.get()) is not message:
            pass
    received = await bob.wait_message(lambda m: _value(m) == "4")
    assert received["id"] == "hubd-ev-4"


async def test_an_unknown_filter_or_a_queued_stanza_means_no_prebuilt_write(
    hub: SmClient, bob: TestClient
) -> None:
    assert can_write_prebuilt(hub)

    def stamp(stanza: Any) -> Any:  # a filter that could change a message
        return stanza

    hub.add_filter("out", stamp)
    assert not can_write_prebuilt(hub)
    assert can_send_now(hub), "the usual direct send still applies"
    hub.del_filter("out", stamp)
    hub.add_filter("out", message_neutral(stamp))
    assert can_write_prebuilt(hub), "marked as leaving messages alone"
    hub.make_message(mto=bob.boundjid, mbody="first").send()  # on the queue
    assert not can_write_prebuilt(hub), "an earlier stanza goes first"


async def test_before_the_session_no_prebuilt_write(prosody: ProsodyServer) -> None:
    hub = SmClient(f"{prosody.jid('hub')}/offline", ACCOUNTS["hub"], ca_file=prosody.ca_file)
    assert not can_write_prebuilt(hub)


async def test_a_stanza_built_on_use_is_acknowledged_by_its_id(
    hub: SmClient, bob: TestClient
) -> None:
    sm: Any = hub.plugin["xep_0198"]
    acked: asyncio.Queue[Any] = asyncio.Queue()
    hub.add_event_handler("stanza_acked", acked.put_nowait)
    element = message_element(bob.boundjid.full, "hubd-ev-5", _payload(5))
    text = tostring(
        event_message(hub, bob.boundjid.full, "hubd-ev-5", _payload(5)).xml,
        xmlns=hub.default_ns,
        stream=hub,
        top_level=True,
    )
    stanza = MessageBuiltOnUse(hub, "hubd-ev-5", lambda: element)
    write_prebuilt(hub, text, lambda: stanza)
    assert sm.unacked_queue[-1][1] is stanza
    assert "_hubd_build" in stanza.__dict__, "not built by the filters"
    sm.request_ack()
    async with asyncio.timeout(10):
        while (await acked.get()) is not stanza:
            pass
    assert stanza["id"] == "hubd-ev-5"
    assert "_hubd_build" in stanza.__dict__, "the id needs no build"
    assert tostring(stanza.xml, xmlns=hub.default_ns, stream=hub, top_level=True) == text
    received = await bob.wait_message(lambda m: _value(m) == "5")
    assert received["id"] == "hubd-ev-5"


async def test_an_asynchronous_filter_sends_through_the_queue(
    hub: SmClient, bob: TestClient
) -> None:
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
