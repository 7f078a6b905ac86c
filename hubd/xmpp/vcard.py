"""The hub's vCard (XEP-0054 vcard-temp): a name and a device count that clients show.

Published to the hub's own account (the server stores and serves it for the
bare JID) at each session start and whenever the device table changes, and
only when the text differs from what was published last.  The hub does not
answer vCard requests itself, so its disco#info stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from hubd.core.hub import Hub
from hubd.core.node import Node

_LOGGER = logging.getLogger(__name__)

NS_VCARD = "vcard-temp"
PUBLISH_TIMEOUT = 15.0


def vcard_element(name: str, devices: int) -> Element:
    """``<vCard xmlns='vcard-temp'>`` with FN, NICKNAME and a DESC naming the device count."""
    card = Element(f"{{{NS_VCARD}}}vCard")
    SubElement(card, f"{{{NS_VCARD}}}FN").text = name
    SubElement(card, f"{{{NS_VCARD}}}NICKNAME").text = name
    SubElement(card, f"{{{NS_VCARD}}}DESC").text = (
        f"hubd house hub: {devices} device{'s' if devices != 1 else ''}. "
        "Send 'help' to talk to it; browse its devices with service discovery."
    )
    return card


class VCardPublisher:
    """Keeps the hub's published vCard current."""

    def __init__(self, xmpp: ClientXMPP, hub: Hub, name: str) -> None:
        self.xmpp = xmpp
        self.hub = hub
        self.name = name
        self._kick = asyncio.Event()
        self._published: tuple[str, int] | None = None
        xmpp.add_event_handler("session_start", self._on_session_start)
        hub.add_tree_listener(self)

    def _on_session_start(self, _event: Any) -> None:
        self._kick.set()

    def on_node_added(self, node: Node) -> None:
        """The count changed: publish again (coalesced: one publish per wake)."""
        self._kick.set()

    def on_node_removed(self, node: Node) -> None:
        """The count changed."""
        self._kick.set()

    async def run(self) -> None:
        """Publish whenever woken and the card differs from the last one published."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            wanted = (self.name, len(self.hub.nodes))
            if wanted == self._published:
                continue
            iq = self.xmpp.make_iq_set()  # to the hub's own account: the server keeps it
            iq.xml.append(vcard_element(*wanted))
            sender: Any = iq
            try:
                await sender.send(timeout=PUBLISH_TIMEOUT)
            except IqTimeout:
                _LOGGER.info("the server did not store the vCard within %g s", PUBLISH_TIMEOUT)
                continue  # the next session start tries again
            except IqError as err:
                _LOGGER.info("the server refused the vCard: %s", err.condition)
                self._published = wanted  # not again until something changes
                continue
            self._published = wanted
