"""XEP-0198 answers (``<a h=.../>``) to the server's ``<r/>``, written with the next stanza.

Prosody asks for an acknowledgement after each write to the hub that leaves
a stanza unacknowledged (``c2s-pre-ondrain``), so nearly every stanza the hub
receives is followed by an ``<r/>``.  slixmpp answers each at once, in a write
of its own: on the hub's path from a request to its answer (a readout, a
command) that is one more write here and one more read and parse at the
server, before the stanza the asker waits for.  Here the answer waits for the
hub's next write and goes in front of it, in the same ``transport.write``; if
nothing is written within :data:`ANSWER_DELAY` it goes alone.

Counting stays exact: the ``h`` written is slixmpp's count of the stanzas
received when it is written (its ``in`` filter counts each as it is read), so a
later answer counts those that came meanwhile too, all of them sent by the
server, as XEP-0198 allows.  The server waits for this answer before it asks
again (``awaiting_ack``), and its own patience for an answer is 30 s.
A pending answer is dropped when the stream goes: a resumed stream carries the
count in its ``<resume h=.../>``, a new one starts from zero.
"""

from __future__ import annotations

import asyncio
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

#: Seconds an answer waits for a stanza to ride with (well under the server's patience).
ANSWER_DELAY = 0.005
_NS_SM = "urn:xmpp:sm:3"
_SLIXMPP_HANDLER = "Stream Management Request Ack"


class AckAnswers:
    """Answers the server's ``<r/>`` in front of the hub's next write, or alone soon after."""

    def __init__(self, xmpp: ClientXMPP, delay: float = ANSWER_DELAY) -> None:
        self.xmpp = xmpp
        self.delay = delay
        self._pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._write = xmpp.send_raw  # slixmpp's own, which writes to the transport
        # Every write goes through send_raw (the send queue's, send_now's, acks'):
        # an instance attribute takes its place for all of them.
        setattr(xmpp, "send_raw", self._send_raw)  # noqa: B010 - mypy: a method is not assignable
        xmpp.remove_handler(_SLIXMPP_HANDLER)
        xmpp.register_handler(
            Callback(
                "hubd ack answers", MatchXPath(f"{{{_NS_SM}}}r"), self._on_request, instream=True
            )
        )
        for event in ("disconnected", "session_end", "session_resumed", "sm_enabled"):
            xmpp.add_event_handler(event, self._drop)

    @property
    def pending(self) -> bool:
        """Whether an answer waits for the next write."""
        return self._pending

    def _on_request(self, _request: Any) -> None:
        if self._pending:
            return  # one answer, with the count when it is written, covers both
        self._pending = True
        self._timer = asyncio.get_running_loop().call_later(self.delay, self._alone)

    def _answer(self) -> str:
        self._pending = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sm: Any = self.xmpp.plugin["xep_0198"]  # slixmpp's plugin is untyped
        return f"<a xmlns='{_NS_SM}' h='{sm.handled}'/>"

    def _alone(self) -> None:
        self._timer = None
        if self._pending and self.xmpp.transport is not None:
            self._write(self._answer())

    def _send_raw(self, data: str | bytes) -> None:
        if self._pending and self.xmpp.transport is not None:
            answer = self._answer()
            data = answer + data if isinstance(data, str) else answer.encode() + data
        self._write(data)

    def _drop(self, _event: Any) -> None:
        # The stream the <r/> came on is gone, or a new count starts.
        self._pending = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
