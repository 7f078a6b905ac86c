"""Event messages written in the caller's turn of the loop, not one turn later.

``stanza.send()`` puts the stanza on slixmpp's send queue; the queue's own task
runs the outgoing filters (XEP-0198's counting among them), serialises it and
writes it on its next turn.  For an event that turn is the last hop between a
sensor's line and the socket, and on a loop that slept since the last reading
it costs more than the write.  :func:`send_now` runs the same filters, in the
same order, and writes at once, when that cannot change what the stream sees:

* nothing waits in the queue (an earlier stanza must go first, and a stanza
  the queue's task took is written before it yields: see below);
* every outgoing filter is synchronous (an asynchronous one makes the queue's
  task yield mid-stanza, and a later stanza written meanwhile would pass it;
  slixmpp awaits those of ``out`` and ``out_sce``, never of ``out_sync``);
* the session is started and the stream connected (before that, slixmpp holds
  stanzas back itself).

Otherwise it falls back to ``stanza.send()``.  XEP-0198 counts the stanza in
its ``out_sync`` filter as it would from the queue, and keeps it for a resumed
stream to send again.  A stanza written here is in the kernel's socket buffer
when the call returns: a ``kill -9`` right after it no longer loses it with
the queue (see hubd/events/pending.py on what a kill costs).

The filter lists are slixmpp's own (``XMLStream.__filters``, read, never
changed); a slixmpp without them sends everything through the queue.
"""

from __future__ import annotations

from inspect import iscoroutinefunction
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.stanza import Message
from slixmpp.xmlstream.tostring import tostring

_FILTER_MODES = ("out", "out_sync", "out_sce")
#: The modes whose coroutine filters slixmpp's queue awaits (``out_sync`` ones are called).
_AWAITED_MODES = ("out", "out_sce")


def event_message(xmpp: ClientXMPP, to: str, message_id: str, payload: Element) -> Message:
    """A ``<message to id>`` carrying ``payload``, without the stanza interfaces' set-up.

    ``make_message`` sets an empty body and subject and parses the JID through
    the stanza's interface machinery; an event message needs none of it.
    """
    xml = Element("{jabber:client}message", {"to": to, "id": message_id})
    xml.append(payload)
    message: Message = xmpp.Message(xml=xml)
    return message


def _filters(xmpp: ClientXMPP) -> dict[str, list[Any]] | None:
    filters: dict[str, list[Any]] | None = getattr(xmpp, "_XMLStream__filters", None)
    return filters


def can_send_now(xmpp: ClientXMPP) -> bool:
    """Whether :func:`send_now` would write at once (else it queues)."""
    filters = _filters(xmpp)
    return (
        filters is not None
        and xmpp.transport is not None
        and bool(getattr(xmpp, "_session_started", False))
        and xmpp.waiting_queue.empty()
        and not any(
            iscoroutinefunction(f) for mode in _AWAITED_MODES for f in filters.get(mode, ())
        )
    )


def send_now(xmpp: ClientXMPP, stanza: Message) -> None:
    """Run the outgoing filters and write ``stanza`` now, or queue it (see module doc)."""
    filters = _filters(xmpp)
    if filters is None or not can_send_now(xmpp):
        stanza.send()
        return
    data: Any = stanza
    for mode in _FILTER_MODES:
        for stanza_filter in filters.get(mode, ()):
            data = stanza_filter(data)
            if data is None:  # a filter dropped it, as in the queue
                return
    xmpp.send_raw(tostring(data.xml, xmlns=xmpp.default_ns, stream=xmpp, top_level=True))
