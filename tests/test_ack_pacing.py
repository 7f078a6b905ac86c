"""XEP-0198 ack requests: one unanswered at a time, one more after the answer if needed."""

from __future__ import annotations

import asyncio
from typing import Any

from hubd.xmpp.acks import AckPacer


class FakeStreamManagement:
    def __init__(self) -> None:
        self.enabled_out = True
        self.requests = 0
        self.unacked_queue: list[object] = []

    def request_ack(self) -> None:
        self.requests += 1


class FakeXmpp:
    """What AckPacer uses of a slixmpp client: the SM plugin, a transport, handlers."""

    def __init__(self) -> None:
        self.plugin = {"xep_0198": FakeStreamManagement()}
        self.transport: object | None = object()
        self.handlers: list[Any] = []
        self.events: dict[str, list[Any]] = {}

    def register_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def add_event_handler(self, name: str, handler: Any) -> None:
        self.events.setdefault(name, []).append(handler)

    def answer(self) -> None:
        """The server's <a/> arrives."""
        for handler in self.handlers:
            handler.run(None)

    def fire(self, name: str) -> None:
        for handler in self.events.get(name, []):
            handler(None)


async def test_a_burst_costs_one_request_per_answer() -> None:
    xmpp = FakeXmpp()
    sm = xmpp.plugin["xep_0198"]
    pacer = AckPacer(xmpp)  # type: ignore[arg-type]
    pacer.request()
    assert sm.requests == 1, "a lone batch is asked about at once"
    for _ in range(50):
        pacer.request()
    assert sm.requests == 1, "nothing more while the first is unanswered"
    xmpp.answer()
    assert sm.requests == 2, "one more for what was sent meanwhile"
    xmpp.answer()
    assert sm.requests == 2, "nothing was sent since"
    pacer.request()
    assert sm.requests == 3


async def test_a_new_stream_forgets_the_request_in_flight() -> None:
    xmpp = FakeXmpp()
    sm = xmpp.plugin["xep_0198"]
    pacer = AckPacer(xmpp)  # type: ignore[arg-type]
    pacer.request()
    xmpp.fire("disconnected")  # its answer will never come
    xmpp.transport = None
    pacer.request()
    assert sm.requests == 1, "no stream: nothing is sent"
    xmpp.transport = object()
    xmpp.fire("session_start")
    pacer.request()
    assert sm.requests == 2


def test_no_requests_without_stream_management() -> None:
    xmpp = FakeXmpp()
    xmpp.plugin["xep_0198"].enabled_out = False
    pacer = AckPacer(xmpp)  # type: ignore[arg-type]
    pacer.request()
    assert xmpp.plugin["xep_0198"].requests == 0
    assert not pacer.enabled()


async def test_an_unanswered_request_reports_a_dead_link() -> None:
    xmpp = FakeXmpp()
    pacer = AckPacer(xmpp, timeout=0.05)  # type: ignore[arg-type]
    dead: asyncio.Queue[str] = asyncio.Queue()
    pacer.on_overdue.append(dead.put_nowait)
    pacer.request()
    reason = await asyncio.wait_for(dead.get(), timeout=5)
    assert reason == "no acknowledgement within 0.05 s"


async def test_an_answered_request_is_not_overdue() -> None:
    xmpp = FakeXmpp()
    pacer = AckPacer(xmpp, timeout=0.05)  # type: ignore[arg-type]
    dead: list[str] = []
    pacer.on_overdue.append(dead.append)
    pacer.request()
    xmpp.answer()
    pacer.request()
    xmpp.fire("disconnected")  # a new stream: the old request is forgotten
    # Each answered or forgotten request cancelled its timer: none is left to fire.
    assert pacer._overdue is None
    assert dead == []
