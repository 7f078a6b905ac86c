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
from iot_client import IqFailure, iq
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from xmpp_client import TestClient

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

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        #: The payload (XML text) to answer the next ``register`` with, or None: empty.
        self.register_answer: str | None = None
        client.register_handler(
            Callback(
                "registry: things' requests",
                MatchXPath(f"{{jabber:client}}iq/{{{NS}}}*"),
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
        return await iq(self.client, thing, xml, "set")
