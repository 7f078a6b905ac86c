"""A XEP-0347 Thing registry played by a plain slixmpp client, written from the XEP's examples.

No open-source registry exists; this one does what the examples show and no
more: it accepts presence subscriptions, answers ``register``, ``update`` and
``unregister`` with an empty result (or what a test asks for), and sends
``claimed``, ``removed`` and ``disowned`` to a Thing.  Deliberately not
hubd's code: stanzas are written as XML text.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from iot_client import IqFailure
from slixmpp import JID, ComponentXMPP
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import XMLStream
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody_components import ProsodyWithComponents

NS = "urn:xmpp:iot:discovery"


@dataclass
class Request:
    """One request a Thing sent to the registry."""

    sender: str  # the Thing's full JID
    name: str  # register, update, unregister
    element: Element

    def tags(self) -> dict[str, tuple[str, str]]:
        """name -> (str|num, value)."""
        return {
            child.get("name", ""): (child.tag.split("}")[1], child.get("value", ""))
            for child in self.element
        }


class ThingRegistry:
    """The registry's behaviour on top of a connected :class:`TestClient`."""

    def __init__(self, client: XMLStream) -> None:
        self.client = client
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        #: The payload (XML text) to answer the next ``register`` with, or None: empty.
        self.register_answer: str | None = None
        client.register_handler(
            Callback(
                "registry: things' requests",
                # jabber:client for an account, jabber:component:accept for a component.
                MatchXPath(f"{{{client.default_ns}}}iq/{{{NS}}}*"),
                self._on_request,
            )
        )

    def _on_request(self, stanza: Any) -> None:
        if stanza["type"] != "set":
            return
        element = next(child for child in stanza.xml if child.tag.startswith(f"{{{NS}}}"))
        name = element.tag.split("}")[1]
        reply = stanza.reply(clear=True)
        if name == "register" and self.register_answer is not None:
            reply.xml.append(fromstring(self.register_answer))
        reply.send()
        self.requests.put_nowait(Request(str(stanza["from"]), name, element))

    async def next_request(self, timeout: float = 20) -> Request:  # noqa: ASYNC109
        """The next request a Thing sent."""
        return await asyncio.wait_for(self.requests.get(), timeout)

    async def tell(self, thing: str, xml: str) -> Element | IqFailure:
        """Send ``claimed``/``removed``/``disowned`` (XML text) to a Thing; its answer."""
        client: Any = self.client
        stanza = client.make_iq_set(ito=JID(thing), ifrom=client.boundjid)
        stanza.xml.append(fromstring(xml))
        try:
            result = await stanza.send(timeout=10)
        except IqError as err:
            error = err.iq["error"]
            return IqFailure(error["type"], error["condition"], error["text"], err.iq.xml)
        children = list(result.xml)
        return children[0] if children else result.xml


async def connect_component(server: ProsodyWithComponents, jid: str) -> ComponentXMPP:
    """A registry as an external component (XEP-0114) that says so in disco#info."""
    component = ComponentXMPP(jid, server.components[jid], server.host, server.component_port)
    component.register_plugin("xep_0030")
    component.plugin["xep_0030"].add_feature(NS)
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    component.add_event_handler("session_start", lambda _e: started.set_result(None))
    component.connect()
    await asyncio.wait_for(started, 10)
    return component
