"""A readout through this hub of one remote's nodes: what is written, in which order.

The remote's ``<req/>`` goes out in the turn the asker's request is read; the
asker's ``accepted`` goes with the remote's answer (relabelled, under the
asker's ``seqnr``) in one write, or alone when the remote takes longer than
ACCEPT_WAIT; the asker's ``cancel``, a remote's error and a silent remote
still end as before.  slixmpp is stood in for: the stanzas written are
recorded in order, each write's stanzas together.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring
from slixmpp.stanza import Iq, Message

from hubd.core.access import AccessPolicy
from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteNode, RemoteSources
from hubd.xmpp import sensordata
from hubd.xmpp.remote_readout import RemoteReader
from hubd.xmpp.sensordata import ReadoutService

SD = "urn:xmpp:iot:sensordata"
ASKER = "asker@example.org/phone"
GARAGE = "garage@example.org/hubd"


class FakeStanza:
    def __init__(self, xml: Element) -> None:
        self.xml = xml


class FakeCancel(FakeStanza):
    def __init__(self, xmpp: FakeXmpp, to: Any) -> None:
        super().__init__(Element("{jabber:client}iq", {"type": "get", "to": str(to)}))
        self.xmpp = xmpp

    def send(self, timeout: float) -> asyncio.Future[Any]:
        self.xmpp.sent.append(self.xml)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


class FakeDisco:
    def add_feature(self, _feature: str) -> None:
        pass


class FakeXmpp:
    """What the readout service and the remote reader use of a slixmpp client."""

    def __init__(self) -> None:
        self.plugin = {"xep_0030": FakeDisco()}
        self.handlers: list[Any] = []
        self.filters: list[Any] = []
        self.claimed = 0  # stanzas a fast route took (hubd/xmpp/fast_routes.py)
        self.sent: list[Element] = []
        self.writes: list[list[Element]] = []  # send_now's: each write's stanzas
        self.written = asyncio.Event()
        self._ids = 0

    def register_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def add_filter(self, mode: str, stanza_filter: Any) -> None:
        assert mode == "in"
        self.filters.append(stanza_filter)

    def new_id(self) -> str:
        self._ids += 1
        return f"id{self._ids}"

    def Iq(self, xml: Element) -> FakeStanza:
        return FakeStanza(xml)

    def Message(self, xml: Element) -> FakeStanza:
        return FakeStanza(xml)

    def send(self, stanza: FakeStanza) -> None:  # send_now's way without slixmpp's filters
        self.sent.append(stanza.xml)
        self.written.set()

    def is_connected(self) -> bool:
        return True

    def make_iq_get(self, ito: Any) -> FakeCancel:
        return FakeCancel(self, ito)

    async def wait_sent(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.sent) < count:
                self.written.clear()
                await self.written.wait()

    def receive(self, text: str) -> None:
        xml = fromstring(text)
        stanza = (Iq if xml.tag.endswith("}iq") else Message)(None, xml)  # as slixmpp parses
        for stanza_filter in self.filters:
            stanza = stanza_filter(stanza)
            if stanza is None:
                self.claimed += 1
                return
        for handler in self.handlers:
            if handler.match(stanza):
                handler.run(stanza)


@pytest.fixture
def hub() -> tuple[FakeXmpp, ReadoutService]:
    xmpp = FakeXmpp()
    sources = RemoteSources([RemoteSettings(id="garage", jid=GARAGE, timeout=30)])
    garage = sources.get("garage")
    assert garage is not None
    garage.replace_nodes([RemoteNode("lamp", "Lamp", "gpio.output")])
    access = AccessPolicy(readers=["asker@example.org"])
    reader = RemoteReader(xmpp, sources)  # type: ignore[arg-type]
    service = ReadoutService(xmpp, object(), access, remote=reader)  # type: ignore[arg-type]
    return xmpp, service


def _ask(xmpp: FakeXmpp, seqnr: int = 7) -> None:
    xmpp.receive(
        f"<iq xmlns='jabber:client' type='get' id='q{seqnr}' from='{ASKER}' to='hub@x.org/h'>"
        f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'>"
        "<node nodeId='lamp' sourceId='garage'/></req></iq>"
    )


def _task(service: ReadoutService) -> asyncio.Task[None]:
    (task,) = service._readouts.values()
    return task


def _accepted(element: Element) -> None:
    assert element.get("type") == "result"
    assert element.get("id") == "q7"
    assert element.get("to") == ASKER
    assert element.find(f"{{{SD}}}accepted") is not None


async def test_the_remote_is_asked_at_once_and_accepted_goes_with_its_answer(
    hub: tuple[FakeXmpp, ReadoutService],
) -> None:
    xmpp, service = hub
    _ask(xmpp)
    (forwarded,) = xmpp.sent  # written in the turn the request was read
    assert forwarded.get("to") == GARAGE
    req = forwarded.find(f"{{{SD}}}req")
    assert req is not None
    assert [n.get("nodeId") for n in req] == ["lamp"]
    assert req.get("seqnr") != "7", "this hub's own sequence number"
    seqnr = req.get("seqnr")
    xmpp.receive(
        f"<iq xmlns='jabber:client' type='result' id='{forwarded.get('id')}' from='{GARAGE}'>"
        f"<accepted xmlns='{SD}' seqnr='{seqnr}'/></iq>"
    )
    xmpp.receive(
        f"<message xmlns='jabber:client' from='{GARAGE}'>"
        f"<fields xmlns='{SD}' seqnr='{seqnr}' done='true'>"
        "<node nodeId='lamp' cacheType='x'><timestamp value='2026-12-04T00:00:00Z'>"
        "<boolean name='state' value='true' momentary='true' automaticReadout='true'/>"
        "</timestamp></node></fields></message>"
    )
    assert len(xmpp.sent) == 3, "accepted and the answer in the turn the answer was read"
    assert xmpp.claimed == 3, "the request, the remote's accepted and fields: no handler matching"
    _accepted(xmpp.sent[1])
    await asyncio.wait_for(_task(service), 5)
    message = xmpp.sent[2]
    assert message.get("to") == ASKER
    fields = message.find(f"{{{SD}}}fields")
    assert fields is not None
    assert (fields.get("seqnr"), fields.get("done")) == ("7", "true")
    (node,) = fields
    assert node.get("sourceId") == "garage"
    assert node.get("cacheType") is None
    assert len(xmpp.sent) == 3


async def test_an_answer_from_another_sender_is_not_taken(
    hub: tuple[FakeXmpp, ReadoutService],
) -> None:
    xmpp, service = hub
    _ask(xmpp)
    forwarded = xmpp.sent[0]
    xmpp.receive(
        f"<iq xmlns='jabber:client' type='error' id='{forwarded.get('id')}' "
        f"from='mallory@example.org/x'><error type='cancel'/></iq>"
    )
    assert service.remote is not None
    assert forwarded.get("id") in service.remote._replies, "still awaited from the remote"
    _task(service).cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(_task(service), 5)


async def test_the_remotes_error_fails_the_node(hub: tuple[FakeXmpp, ReadoutService]) -> None:
    xmpp, service = hub
    _ask(xmpp)
    forwarded = xmpp.sent[0]
    xmpp.receive(
        f"<iq xmlns='jabber:client' type='error' id='{forwarded.get('id')}' from='{GARAGE}'>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></iq>"
    )
    await asyncio.wait_for(_task(service), 5)
    _accepted(xmpp.sent[1])
    failure = xmpp.sent[2].find(f"{{{SD}}}failure")
    assert failure is not None
    assert (failure.get("seqnr"), failure.get("done")) == ("7", "true")
    (error,) = failure
    assert (error.get("nodeId"), error.get("sourceId")) == ("lamp", "garage")
    assert len(xmpp.sent) == 3, "the remote, which refused, is not asked to cancel"


async def test_the_askers_cancel_cancels_at_the_remote(
    hub: tuple[FakeXmpp, ReadoutService],
) -> None:
    xmpp, service = hub
    _ask(xmpp)
    task = _task(service)
    seqnr = xmpp.sent[0].find(f"{{{SD}}}req").get("seqnr")  # type: ignore[union-attr]
    xmpp.receive(
        f"<iq xmlns='jabber:client' type='get' id='c7' from='{ASKER}'>"
        f"<cancel xmlns='{SD}' seqnr='7'/></iq>"
    )
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    _accepted(xmpp.sent[1])  # the request's answer first
    cancelled = xmpp.sent[2].find(f"{{{SD}}}cancelled")
    assert cancelled is not None, "the asker is told"
    cancel = xmpp.sent[3]
    assert cancel.get("to") == GARAGE
    assert cancel.find(f"{{{SD}}}cancel").get("seqnr") == seqnr  # type: ignore[union-attr]
    assert service.remote is not None
    assert not service.remote._waiting
    assert not service.remote._replies


async def test_a_silent_remote_fails_the_node_and_is_asked_to_cancel() -> None:
    xmpp = FakeXmpp()
    sources = RemoteSources([RemoteSettings(id="garage", jid=GARAGE, timeout=0.01)])
    garage = sources.get("garage")
    assert garage is not None
    garage.replace_nodes([RemoteNode("lamp", "Lamp", "gpio.output")])
    reader = RemoteReader(xmpp, sources)  # type: ignore[arg-type]
    silent: list[str] = []
    reader.on_silent = lambda source, why: silent.append(source.id)
    access = AccessPolicy(readers=["asker@example.org"])
    service = ReadoutService(xmpp, object(), access, remote=reader)  # type: ignore[arg-type]
    _ask(xmpp)
    await asyncio.wait_for(_task(service), 5)
    cancel, failure = xmpp.sent[1], xmpp.sent[3]
    _accepted(xmpp.sent[2])
    assert cancel.find(f"{{{SD}}}cancel") is not None
    done = failure.find(f"{{{SD}}}failure")
    assert done is not None
    assert done.get("done") == "true"
    assert "no answer within" in (done[0].text or "")
    assert silent == ["garage"]
    assert not reader._waiting
    assert not reader._replies


async def test_a_slow_remote_has_the_asker_accepted_first(
    hub: tuple[FakeXmpp, ReadoutService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensordata, "ACCEPT_WAIT", 0.001)
    xmpp, service = hub
    _ask(xmpp)
    await xmpp.wait_sent(2)
    _accepted(xmpp.sent[1])
    _task(service).cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(_task(service), 5)
    assert [e.find(f"{{{SD}}}accepted") is not None for e in xmpp.sent].count(True) == 1
