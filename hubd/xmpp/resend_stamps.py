"""XEP-0203 delay stamps on events that a resumed stream re-sends.

An event goes out live, without a stamp.  When the link dies before the
server acknowledged it, slixmpp keeps the stanza in its XEP-0198 queue and,
once the stream is resumed, re-sends it as it was: the subscriber would take
a reading that waited for the link as a live one.  So, when the link drops,
each event stanza still unacknowledged gets the ``<delay/>`` of its reading's
time (the stanza objects in the queue are the ones re-sent).  A stream that
cannot be resumed is a new session: then the outbox sends the events again,
stamped (``hubd/events/delivery.py``), and this queue is dropped by slixmpp.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from slixmpp import ClientXMPP

from hubd.core import xsd

NS_DELAY = "urn:xmpp:delay"
DELAY_TEXT = "Stored while the subscriber or the hub was offline"


def add_delay(xml: Element, sender: str, stamp: datetime) -> None:
    """Add ``<delay xmlns='urn:xmpp:delay' from=sender stamp=.../>`` (once) to a stanza."""
    if xml.find(f"{{{NS_DELAY}}}delay") is not None:
        return
    delay = SubElement(
        xml, f"{{{NS_DELAY}}}delay", {"from": sender, "stamp": xsd.format_datetime(stamp)}
    )
    delay.text = DELAY_TEXT


class ResendStamps:
    """Remembers the reading time of each unacknowledged event stanza, to stamp a re-send."""

    def __init__(self, xmpp: ClientXMPP) -> None:
        self.xmpp = xmpp
        self._created: dict[str, datetime] = {}  # stanza id -> reading time, until acked
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("stanza_acked", self._on_acked)
        xmpp.add_event_handler("session_end", self._forget)
        xmpp.add_event_handler("sm_failed", self._forget)

    def sent(self, stanza_id: str, created: datetime) -> None:
        """An event stanza went out on a stream that acknowledges (XEP-0198)."""
        self._created[stanza_id] = created

    def waiting(self) -> int:
        """How many sent event stanzas are not acknowledged yet."""
        return len(self._created)

    def _on_acked(self, stanza: Any) -> None:
        self._created.pop(str(stanza["id"] or ""), None)

    def _forget(self, _event: Any) -> None:
        # slixmpp dropped its queue: those events go again from the outbox.
        self._created.clear()

    def _on_disconnected(self, _event: Any) -> None:
        if not self._created:
            return
        sender = self.xmpp.boundjid.bare
        for _seq, stanza in self.xmpp.plugin["xep_0198"].unacked_queue:
            created = self._created.get(str(stanza["id"] or ""))
            if created is not None:
                add_delay(stanza.xml, sender, created)
