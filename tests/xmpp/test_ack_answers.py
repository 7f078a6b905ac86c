"""hubd/xmpp/ack_answers.py: the answer to ``<r/>`` rides on the next write, its count exact.

First against a stand-in for slixmpp (what is written, and when), then on the
session's real Prosody: a hub receiving stanzas answers the server's requests
with the count the server expects, and its stream stays up (Prosody closes a
stream whose ``h`` counts more than it sent).
"""

from __future__ import annotations

import asyncio
from typing import Any

from accounts import ACCOUNTS
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.ack_answers import AckAnswers


class FakeStreamManagement:
    def __init__(self) -> None:
        self.handled = 0


class FakeXmpp:
    """What AckAnswers uses of a slixmpp client: send_raw, a transport, handlers, events."""

    def __init__(self) -> None:
        self.plugin = {"xep_0198": FakeStreamManagement()}
        self.transport: object | None = object()
        self.writes: list[str | bytes] = []
        self.written = asyncio.Event()
        self.handlers: list[Any] = []
        self.removed: list[str] = []
        self.events: dict[str, list[Any]] = {}

    def send_raw(self, data: str | bytes) -> None:
        self.writes.append(data)
        self.written.set()

    def remove_handler(self, name: str) -> bool:
        self.removed.append(name)
        return True

    def register_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def add_event_handler(self, name: str, handler: Any) -> None:
        self.events.setdefault(name, []).append(handler)

    def receive(self, count: int = 1) -> None:
        """Stanzas arrive (slixmpp's in filter counts them)."""
        self.plugin["xep_0198"].handled += count

    def request(self) -> None:
        """The server's <r/> arrives."""
        for handler in self.handlers:
            handler.prerun(None)  # instream: runs as the stanza is read

    def fire(self, name: str) -> None:
        for handler in self.events.get(name, []):
            handler(None)


def _answer(h: int) -> str:
    return f"<a xmlns='urn:xmpp:sm:3' h='{h}'/>"


async def test_the_answer_goes_in_front_of_the_next_write() -> None:
    xmpp = FakeXmpp()
    answers = AckAnswers(xmpp, delay=60)  # type: ignore[arg-type]
    assert xmpp.removed == ["Stream Management Request Ack"], "slixmpp's own answer is off"
    xmpp.receive(3)
    xmpp.request()
    assert xmpp.writes == [], "not written on its own"
    assert answers.pending
    xmpp.send_raw("<message/>")  # the instance's send_raw is AckAnswers'
    assert xmpp.writes == [_answer(3) + "<message/>"], "one write, the answer first"
    assert not answers.pending
    xmpp.send_raw("<iq/>")
    assert xmpp.writes[-1] == "<iq/>", "answered once"


async def test_the_count_is_the_one_when_written() -> None:
    xmpp = FakeXmpp()
    AckAnswers(xmpp, delay=60)  # type: ignore[arg-type]
    xmpp.receive(2)
    xmpp.request()
    xmpp.receive(1)  # came after the <r/>, before the answer: counted too
    xmpp.request()  # a second request before the answer: one answer covers both
    xmpp.send_raw(b"<presence/>")
    assert xmpp.writes == [_answer(3).encode() + b"<presence/>"]


async def test_alone_after_the_delay_when_nothing_is_written() -> None:
    xmpp = FakeXmpp()
    answers = AckAnswers(xmpp, delay=0.001)  # type: ignore[arg-type]
    xmpp.receive(7)
    xmpp.request()
    await asyncio.wait_for(xmpp.written.wait(), 5)
    assert xmpp.writes == [_answer(7)]
    assert not answers.pending
    xmpp.send_raw("<message/>")
    assert xmpp.writes[-1] == "<message/>"


async def test_a_dropped_stream_drops_the_answer() -> None:
    xmpp = FakeXmpp()
    answers = AckAnswers(xmpp, delay=0.001)  # type: ignore[arg-type]
    xmpp.receive(4)
    xmpp.request()
    xmpp.fire("disconnected")  # a resumed stream says its count in <resume h=.../>
    assert not answers.pending
    later = asyncio.get_running_loop().create_future()
    # Timers run in deadline order: by this one's, the answer's would have run.
    asyncio.get_running_loop().call_later(0.05, later.set_result, None)
    await asyncio.wait_for(later, 5)
    assert xmpp.writes == []
    xmpp.send_raw("<resume/>")
    assert xmpp.writes == ["<resume/>"]


async def test_no_answer_without_a_transport() -> None:
    xmpp = FakeXmpp()
    AckAnswers(xmpp, delay=0.001)  # type: ignore[arg-type]
    xmpp.request()
    xmpp.transport = None
    later = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.05, later.set_result, None)
    await asyncio.wait_for(later, 5)
    assert xmpp.writes == []


class SmClient(TestClient):
    """The test client with XEP-0198 and hubd's answers, as hubd registers them."""

    def __init__(self, jid: str, password: str, **kwargs: Any) -> None:
        super().__init__(jid, password, **kwargs)
        self.register_plugin("xep_0198", {"window": 100})
        self.answers = AckAnswers(self)


async def test_the_server_takes_the_answers(prosody: ProsodyServer, bob: TestClient) -> None:
    hub = await connect_client(prosody, "hub", ACCOUNTS["hub"], make=SmClient)
    try:
        sm: Any = hub.plugin["xep_0198"]
        assert sm.enabled_in, "the server enables stream management"
        answered: asyncio.Queue[str] = asyncio.Queue()
        answers: Any = hub.answers
        write = answers._write

        def spy(data: str | bytes) -> None:
            text = data.decode() if isinstance(data, bytes) else data
            if text.startswith("<a xmlns='urn:xmpp:sm:3'"):
                answered.put_nowait(text)
            write(data)

        answers._write = spy
        for n in range(5):
            bob.send_message(mto=hub.boundjid, mbody=f"m{n}")
        for n in range(5):
            await hub.wait_message(lambda m, n=n: m["body"] == f"m{n}")
        async with asyncio.timeout(10):
            while True:  # the server asks after each write; each answer counts what came
                text = await answered.get()
                if f"h='{sm.handled}'" in text:
                    break
        # The server took the count (a wrong one closes the stream): the stream still works.
        hub.send_message(mto=bob.boundjid, mbody="still here")
        await bob.wait_message(lambda m: m["body"] == "still here")
        assert hub.is_connected()
    finally:
        await hub.disconnect_and_wait()
