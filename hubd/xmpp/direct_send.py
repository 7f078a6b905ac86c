"""Stanzas (events, readout answers) written in the caller's turn of the loop, not one later.

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

Otherwise it falls back to the send queue (``xmpp.send``).  XEP-0198 counts the stanza in
its ``out_sync`` filter as it would from the queue, and keeps it for a resumed
stream to send again.  A stanza written here is in the kernel's socket buffer
when the call returns: a ``kill -9`` right after it no longer loses it with
the queue (see hubd/events/pending.py on what a kill costs).

The filter lists are slixmpp's own (``XMLStream.__filters``, read, never
changed); a slixmpp without them sends everything through the queue.

:func:`write_prebuilt` goes one step further for an event whose text is
prebuilt (hubd/xmpp/prebuilt_events.py): it writes the text first and then
runs the filters on the stanza it is, so that XEP-0198 counts it and keeps it
for resumption after the write, in the same call (nothing else can be written
in between).  That is the same stream only when no filter would change or
drop the message: so only when every filter is one known to pass a
``<message>`` through untouched (:func:`message_neutral`: the roster's and
hubd's presence filters, XEP-0198's counting); with any other filter it
answers False and the caller sends the usual way.
"""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from typing import Any, TypeVar
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.plugins.xep_0198 import XEP_0198
from slixmpp.roster.multi import Roster
from slixmpp.stanza import Iq, Message
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.tostring import tostring

_FILTER_MODES = ("out", "out_sync", "out_sce")
#: The modes whose coroutine filters slixmpp's queue awaits (``out_sync`` ones are called).
_AWAITED_MODES = ("out", "out_sce")
_F = TypeVar("_F", bound=Callable[..., Any])
#: Filters (their functions) that return a ``<message>`` as they got it, unchanged:
#: the roster's remembers presence, XEP-0198's counts and keeps the stanza.
_MESSAGE_NEUTRAL: set[Any] = {Roster._save_last_status, XEP_0198._handle_outgoing}


def message_neutral(func: _F) -> _F:
    """Mark an outgoing filter as returning every ``<message>`` unchanged (see write_prebuilt)."""
    _MESSAGE_NEUTRAL.add(func)
    return func


def event_message(xmpp: ClientXMPP, to: str, message_id: str, payload: Element) -> Message:
    """A ``<message to id>`` carrying ``payload``, without the stanza interfaces' set-up.

    ``make_message`` sets an empty body and subject and parses the JID through
    the stanza's interface machinery; an event message needs none of it.
    """
    message: Message = xmpp.Message(xml=message_element(to, message_id, payload))
    return message


def message_element(to: str, message_id: str, payload: Element) -> Element:
    """The element of :func:`event_message`."""
    xml = Element("{jabber:client}message", {"to": to, "id": message_id})
    xml.append(payload)
    return xml


def _filters(xmpp: ClientXMPP) -> dict[str, list[Any]] | None:
    filters: dict[str, list[Any]] | None = getattr(xmpp, "_XMLStream__filters", None)
    return filters


def _stream_free(xmpp: ClientXMPP) -> bool:
    """A session on a connected stream with nothing queued: a write now keeps the order."""
    return (
        xmpp.transport is not None
        and bool(getattr(xmpp, "_session_started", False))
        and xmpp.waiting_queue.empty()
    )


def _filtered(filters: dict[str, list[Any]], stanza: StanzaBase) -> Any:
    """``stanza`` through every outgoing filter, in the queue's order; None: one dropped it."""
    data: Any = stanza
    for mode in _FILTER_MODES:
        for stanza_filter in filters.get(mode, ()):
            data = stanza_filter(data)
            if data is None:
                return None
    return data


def can_send_now(xmpp: ClientXMPP) -> bool:
    """Whether :func:`send_now` would write at once (else it queues)."""
    filters = _filters(xmpp)
    return (
        filters is not None
        and _stream_free(xmpp)
        and not any(
            iscoroutinefunction(f) for mode in _AWAITED_MODES for f in filters.get(mode, ())
        )
    )


def send_now(xmpp: ClientXMPP, *stanzas: StanzaBase) -> None:
    """Run the outgoing filters and write ``stanzas`` now, in one write, or queue them.

    Several go in one ``transport.write`` (one TLS record, one system call, one
    read at the server), in order; see the module doc for when they are queued.
    """
    filters = _filters(xmpp)
    if filters is None or not can_send_now(xmpp):
        for stanza in stanzas:
            # The queue, as StanzaBase.send (Iq.send would also await an answer nobody reads).
            xmpp.send(stanza)
        return
    written = []
    for stanza in stanzas:
        data = _filtered(filters, stanza)
        if data is not None:  # else a filter dropped it, as in the queue
            written.append(tostring(data.xml, xmlns=xmpp.default_ns, stream=xmpp, top_level=True))
    if written:
        xmpp.send_raw("".join(written))


def can_write_prebuilt(xmpp: ClientXMPP) -> bool:
    """Whether :func:`write_prebuilt` may write now: as :func:`can_send_now`, known filters only."""
    filters = _filters(xmpp)
    if filters is None or not _stream_free(xmpp):
        return False
    for mode in _FILTER_MODES:
        for stanza_filter in filters.get(mode, ()):
            if getattr(stanza_filter, "__func__", stanza_filter) not in _MESSAGE_NEUTRAL:
                return False
    return True


def write_prebuilt(xmpp: ClientXMPP, text: str, stanza: Callable[[], Message]) -> None:
    """Write ``text`` now, then count ``stanza()`` (what ``text`` serialises) as sent.

    Only when :func:`can_write_prebuilt` said so, in the same turn.  ``stanza``
    makes the stanza after the write; every filter runs on it as it would
    before a write, XEP-0198 keeping it for a resumed stream to send again.
    """
    filters = _filters(xmpp) or {}
    xmpp.send_raw(text)
    _filtered(filters, stanza())  # message-neutral filters: XEP-0198 counts and keeps it


def result_iq(xmpp: ClientXMPP, iq: Any, payload: Element | None = None) -> Iq:
    """The ``result`` answering ``iq``, carrying ``payload``, built as :func:`event_message` is.

    ``iq.reply()`` copies the stanza and clears it through the interfaces; the
    answer needs only the id and the asker's address.
    """
    xml = Element("{jabber:client}iq", {"type": "result", "id": iq.xml.get("id", "")})
    if (to := iq.xml.get("from")) is not None:
        xml.set("to", to)
    if payload is not None:
        xml.append(payload)
    result: Iq = xmpp.Iq(xml=xml)
    return result


def plain_message(xmpp: ClientXMPP, to: str, payload: Element) -> Message:
    """A ``<message to>`` carrying ``payload`` (no id: as ``make_message`` sends it)."""
    xml = Element("{jabber:client}message", {"to": to})
    xml.append(payload)
    message: Message = xmpp.Message(xml=xml)
    return message
