"""A remote's tree answer that arrives after its unavailable presence does not bring it back.

The race seen end to end (tests/e2e/test_hubctl_remotes.py): the front hub
asks the garage for its tree on the garage's available presence, the garage
answers and stops at once, and its unavailable presence is handled before
the answer.  The answer is stale then: the garage stays offline until its
next available presence.  RemoteHubs runs here on a stand-in for the XMPP
client whose IQ answers the test releases, so the order is the test's.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree.ElementTree import Element

from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteSources
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.remotes import GONE, RemoteHubs

GARAGE = RemoteSettings(id="garage", jid="garage-hub@example.org/hubd")
SHED = RemoteSettings(id="shed", jid="shed-hub@example.org/hubd")


def tree(*node_ids: str) -> Element:
    answer = Element(f"{{{NS_CONCENTRATORS}}}getAllNodesResponse", {"result": "OK"})
    for node_id in node_ids:
        answer.append(
            Element(
                f"{{{NS_CONCENTRATORS}}}node",
                {"nodeId": node_id, "nodeType": "gpio.input", "isReadable": "true"},
            )
        )
    return answer


class _Answer:
    def __init__(self, payload: Element) -> None:
        self.xml = Element("iq")
        self.xml.append(payload)


class _Iq:
    def __init__(self, client: FakeClient, to: str) -> None:
        self.client = client
        self.xml = Element("iq", {"to": to})

    async def send(self, timeout: float) -> _Answer:  # noqa: ASYNC109 - slixmpp's signature
        answer: asyncio.Future[Element] = asyncio.get_running_loop().create_future()
        self.client.pending.put_nowait((self.xml, answer))
        async with asyncio.timeout(timeout):
            return _Answer(await answer)


class FakeClient:
    """What RemoteHubs uses of slixmpp's ClientXMPP; IQs wait until the test answers them."""

    def __init__(self) -> None:
        self.pending: asyncio.Queue[tuple[Element, asyncio.Future[Element]]] = asyncio.Queue()

    def register_handler(self, _handler: Any) -> None:
        pass

    def add_event_handler(self, _name: str, _handler: Any) -> None:
        pass

    def make_iq_get(self, ito: Any) -> _Iq:
        return _Iq(self, str(ito))

    async def answer(self, payload: Element) -> str:
        """Answer the next request with ``payload``; the request's name."""
        iq, future = await asyncio.wait_for(self.pending.get(), 5)
        future.set_result(payload)
        return iq[0].tag.split("}")[1]


def presence(jid: str) -> dict[str, str]:
    return {"from": jid}


async def test_a_tree_answer_after_the_remote_went_offline_is_stale() -> None:
    client = FakeClient()
    sources = RemoteSources([GARAGE])
    hubs = RemoteHubs(client, sources)  # type: ignore[arg-type]
    garage = sources.get("garage")
    assert garage is not None
    changes: asyncio.Queue[bool] = asyncio.Queue()
    hubs.listeners.append(lambda source: changes.put_nowait(source.online))

    async def change() -> bool:
        return await asyncio.wait_for(changes.get(), 5)

    runner = asyncio.create_task(hubs.run())
    try:
        hubs.refresh("garage")
        assert await client.answer(tree("door")) == "getAllNodes"
        assert await client.answer(Element(f"{{{NS_CONCENTRATORS}}}subscribeResponse")) == (
            "subscribe"
        )
        assert await change() is True

        # Its presence again brings a fetch; it answers, then goes before the answer is read.
        hubs._on_available(presence(GARAGE.jid))
        _request, future = await asyncio.wait_for(client.pending.get(), 5)
        hubs._on_unavailable(presence(GARAGE.jid))
        assert (garage.online, garage.reason) == (False, GONE)
        assert await change() is False
        future.set_result(tree("door", "light"))
        # Its next presence: the run loop takes it once the stale fetch is over, so the
        # next request proves that one ended, and it asked for no tree events.
        hubs._on_available(presence(GARAGE.jid))
        request, future = await asyncio.wait_for(client.pending.get(), 5)
        assert request[0].tag == f"{{{NS_CONCENTRATORS}}}getAllNodes"
        assert (garage.online, garage.reason) == (False, GONE)
        assert garage.node("light") is None
        assert changes.empty()

        # Back, with the tree it has now.
        future.set_result(tree("door", "light"))
        assert await client.answer(Element(f"{{{NS_CONCENTRATORS}}}subscribeResponse")) == (
            "subscribe"
        )
        assert await change() is True
        assert garage.online
        assert garage.node("light") is not None
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_fetch_not_yet_sent_when_the_remote_goes_is_not_sent() -> None:
    client = FakeClient()
    sources = RemoteSources([GARAGE, SHED])
    hubs = RemoteHubs(client, sources)  # type: ignore[arg-type]
    changes: asyncio.Queue[str] = asyncio.Queue()
    hubs.listeners.append(lambda source: changes.put_nowait(source.id))
    runner = asyncio.create_task(hubs.run())
    try:
        # The garage's presence comes and goes before the run loop fetches anything.
        hubs._on_available(presence(GARAGE.jid))
        hubs._on_unavailable(presence(GARAGE.jid))
        assert changes.get_nowait() == "garage"  # not reached yet, now gone: the reason changed
        hubs._on_available(presence(SHED.jid))
        iq, future = await asyncio.wait_for(client.pending.get(), 5)
        assert iq.get("to") == SHED.jid
        future.set_result(tree("heater"))
        assert await client.answer(Element(f"{{{NS_CONCENTRATORS}}}subscribeResponse")) == (
            "subscribe"
        )
        assert await asyncio.wait_for(changes.get(), 5) == "shed"
        # The two fetches would have started together: only the shed's went out.
        assert client.pending.empty()
        garage = sources.get("garage")
        assert garage is not None
        assert not garage.online
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
