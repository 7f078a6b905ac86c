"""XEP-0198 acknowledgement requests: one outstanding at a time.

An event leaves hubd's outbox only when the server acknowledges the stanza
that carried it, so the hub asks for an acknowledgement (``<r/>``) after each
batch of events it sends.  Under load that meant an ``<r/>`` out and an
``<a/>`` in for every batch, on top of slixmpp's own request every five
stanzas.  Here a request waits while an earlier one is unanswered, and one
more goes when the answer comes if anything was sent meanwhile: a lone event
is asked about at once, a burst costs one exchange per round trip.
slixmpp's own request stays, every :data:`SM_WINDOW` stanzas, to bound its
queue of unacknowledged stanzas when no event flows (readout answers, chat
replies).

A request unanswered for ``timeout`` seconds means the link is dead: the
``on_overdue`` callbacks are told (the connection supervisor cuts it, see
``hubd/xmpp/connection.py``), so that events sent into a dead link are
re-sent by a resumed stream within seconds, not after TCP gives up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.xmpp.connection import PING_TIMEOUT

SM_WINDOW = 100
_NS_SM = "urn:xmpp:sm:3"


class AckPacer:
    """Asks the server for acknowledgements, never two unanswered at once."""

    def __init__(self, xmpp: ClientXMPP, timeout: float = PING_TIMEOUT) -> None:
        self.xmpp = xmpp
        self.timeout = timeout
        #: Called with a reason when a request stays unanswered for ``timeout`` s.
        self.on_overdue: list[Callable[[str], None]] = []
        self._overdue: asyncio.TimerHandle | None = None
        self._outstanding = False
        self._wanted = False
        self._answered: asyncio.Event | None = None  # set by the next <a/> (settle waits)
        xmpp.register_handler(
            Callback("hubd ack pacing", MatchXPath(f"{{{_NS_SM}}}a"), self._on_ack)
        )
        for event in ("disconnected", "session_start", "session_resumed"):
            xmpp.add_event_handler(event, self._reset)

    @property
    def _sm(self) -> Any:  # slixmpp's plugin is untyped
        return self.xmpp.plugin["xep_0198"]

    def enabled(self) -> bool:
        """Whether the server acknowledges stanzas on this stream (XEP-0198 is on)."""
        return bool(self._sm.enabled_out)

    def request(self) -> None:
        """Ask now, or when the answer to the request in flight comes."""
        if self._outstanding:
            self._wanted = True
        else:
            self._send()

    async def settle(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounds a goodbye
        """Wait until the server acknowledged everything sent; False on timeout."""
        if not self.enabled() or self.xmpp.transport is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                # Stanzas still in slixmpp's send queue are not counted yet.
                await self.xmpp.waiting_queue.join()
                while self._sm.unacked_queue:
                    self._answered = asyncio.Event()
                    self._send()
                    await self._answered.wait()
        except TimeoutError:
            return False
        finally:
            self._answered = None
        return True

    def _on_ack(self, _ack: Any) -> None:
        # slixmpp's own handler, registered first, has taken the acked stanzas off its queue.
        self._outstanding = False
        self._stop_timer()
        if self._answered is not None:
            self._answered.set()
        if self._wanted:
            self._wanted = False
            self._send()

    def _reset(self, _event: Any) -> None:
        # A new stream (or none): nothing asked on the old one will be answered.
        self._outstanding = False
        self._wanted = False
        self._stop_timer()

    def _stop_timer(self) -> None:
        if self._overdue is not None:
            self._overdue.cancel()
            self._overdue = None

    def _on_overdue(self) -> None:
        self._overdue = None
        if self._outstanding:
            reason = f"no acknowledgement within {self.timeout:g} s"
            for callback in tuple(self.on_overdue):
                callback(reason)

    def _send(self) -> None:
        if self.enabled() and self.xmpp.transport is not None:
            self._outstanding = True
            self._sm.request_ack()
            if self._overdue is None:
                loop = asyncio.get_running_loop()
                self._overdue = loop.call_later(self.timeout, self._on_overdue)
