"""A dashboard's side of XEP-0060, in plain slixmpp and hand-written XML (no hubd code).

What a reader does with the hub's node: retrieve its items, subscribe, wait
for an event; and the error a refused request gets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element, fromstring

from slixmpp.exceptions import IqError
from xmpp_client import TestClient

PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = "http://jabber.org/protocol/pubsub#event"
OWNER = "http://jabber.org/protocol/pubsub#owner"
SENSORDATA = "urn:xmpp:iot:sensordata"


class Refused(Exception):
    """The service answered with an error; ``condition`` names it."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


async def request(client: TestClient, to: str, xml: str, kind: str = "get") -> Element:
    """Send one pubsub IQ (``xml`` is its payload) and return the result's payload."""
    iq: Any = client.make_iq_get(ito=to) if kind == "get" else client.make_iq_set(ito=to)
    iq.xml.append(fromstring(xml))
    try:
        result = await iq.send(timeout=10)
    except IqError as err:
        raise Refused(err.condition) from None
    answer: Element = next(iter(result.xml), Element("none"))
    return answer


async def items(client: TestClient, to: str, node: str) -> dict[str, Element]:
    """Item id -> payload of every item of ``node``."""
    answer = await request(client, to, f"<pubsub xmlns='{PUBSUB}'><items node='{node}'/></pubsub>")
    return {
        item.get("id", ""): next(iter(item))
        for item in answer.iter(f"{{{PUBSUB}}}item")
        if len(item)
    }


async def wait_items(
    client: TestClient,
    to: str,
    node: str,
    ids: set[str],
    timeout: float = 10,  # noqa: ASYNC109
) -> dict[str, Element]:
    """Ask for the items until every id in ``ids`` is there (the hub publishes them at start)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                found = await items(client, to, node)
            except Refused as err:
                if err.condition != "item-not-found":
                    raise
                found = {}
            if ids <= set(found):
                return found
            await asyncio.sleep(0.1)


async def subscribe(client: TestClient, to: str, node: str) -> None:
    """Subscribe the client's full JID to ``node``."""
    jid = client.boundjid.full
    await request(
        client,
        to,
        f"<pubsub xmlns='{PUBSUB}'><subscribe node='{node}' jid='{jid}'/></pubsub>",
        "set",
    )


async def wait_event(
    client: TestClient, node: str, item_id: str, wanted: Callable[[Element], bool]
) -> Element:
    """The payload of the next event of ``node``'s item ``item_id`` that is ``wanted``."""

    def matches(message: Any) -> bool:
        return _event_item(message.xml, node, item_id, wanted) is not None

    message = await client.wait_message(matches, timeout=10)
    payload = _event_item(message.xml, node, item_id, wanted)
    assert payload is not None
    return payload


def _event_item(
    xml: Element, node: str, item_id: str, wanted: Callable[[Element], bool]
) -> Element | None:
    for items_elem in xml.iter(f"{{{EVENT}}}items"):
        if items_elem.get("node") != node:
            continue
        for item in items_elem.iter(f"{{{EVENT}}}item"):
            if item.get("id") == item_id and len(item) and wanted(item[0]):
                return item[0]
    return None


def fields_of(payload: Element) -> dict[str, dict[str, str]]:
    """Field name -> attributes of an ``iot`` item's typed fields (with ``type``: the tag)."""
    out: dict[str, dict[str, str]] = {}
    for stamp in payload.iter(f"{{{SENSORDATA}}}timestamp"):
        for field in stamp:
            out[field.get("name", "")] = {**field.attrib, "type": field.tag.rsplit("}", 1)[1]}
    return out
