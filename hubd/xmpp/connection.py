"""Stay connected: connect, keep alive, reconnect with backoff; stop only when told.

slixmpp can reschedule failed connection attempts by itself, but it does not
reconnect a session that dropped, has no jitter, and cannot tell hubd when to
give up.  This supervisor owns the whole cycle instead: one attempt at a time,
an exponential backoff with jitter between attempts, a ping after each quiet
``keepalive`` interval (a dead link is cut and redialled), XEP-0198 resumption
when the server still holds the session, and a fatal :class:`XmppAuthError`
when the server refuses the password, since retrying cannot fix that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from hubd.core.backoff import Backoff
from hubd.errors import XmppAuthError

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 45.0
PING_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class _Outcome:
    online: bool
    reason: str
    resumed: bool = False


class ConnectionSupervisor:
    """Keeps one slixmpp client connected for as long as it runs."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        *,
        host: str | None,
        port: int | None,
        keepalive: float = 60.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.xmpp = xmpp
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.backoff = backoff or Backoff(base=1.0, cap=300.0)
        self.connected = asyncio.Event()
        # Called with the new state right after ``connected`` is set or cleared
        # (the app's systemd status line and metrics follow it).
        self.state_listeners: list[Callable[[bool], None]] = []
        self._waiter: asyncio.Future[_Outcome] | None = None
        self._disconnected: asyncio.Future[str] | None = None
        self._closing = False
        for event, handler in (
            ("session_start", self._on_session_start),
            ("session_resumed", self._on_session_resumed),
            ("sm_enabled", self._on_sm_enabled),
            ("connection_failed", self._on_connection_failed),
            ("failed_all_auth", self._on_failed_auth),
            ("disconnected", self._on_disconnected),
            ("ssl_invalid_chain", self._on_ssl_invalid),
            ("stream_error", self._on_stream_error),
        ):
            xmpp.add_event_handler(event, handler)
        self._last_error: str | None = None

    # slixmpp event handlers: plain functions, they only resolve futures.
    def _settle(self, outcome: _Outcome) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(outcome)

    def _on_session_start(self, _event: Any) -> None:
        self._settle(_Outcome(True, "session started"))

    def _on_session_resumed(self, _event: Any) -> None:
        self._settle(_Outcome(True, "session resumed", resumed=True))

    def _on_sm_enabled(self, enabled: Any) -> None:
        # slixmpp starts the session before it enables XEP-0198, so a link cut
        # between the two cannot be resumed; this line tells when it can.
        resumable = bool(enabled["resume"])
        _LOGGER.debug("stream management enabled%s", ", resumable" if resumable else "")

    def _on_connection_failed(self, error: Any) -> None:
        self._settle(_Outcome(False, _describe(error)))

    def _on_failed_auth(self, _event: Any) -> None:
        if "starttls" not in self.xmpp.features:
            reason = "the server offered no TLS; hubd never logs in unencrypted"
        else:
            reason = "the server refused the password"
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(XmppAuthError(f"{self.xmpp.boundjid.bare}: {reason}"))

    def _on_ssl_invalid(self, error: Any) -> None:
        self._last_error = f"TLS certificate not trusted: {_describe(error)}"

    def _on_stream_error(self, error: Any) -> None:
        try:
            self._last_error = f"stream error: {error['condition']} {error['text']}".strip()
        except (KeyError, TypeError):
            self._last_error = "stream error"

    def _on_disconnected(self, reason: Any) -> None:
        text = self._last_error or _describe(reason) or "connection closed"
        self._settle(_Outcome(False, text))
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(text)

    async def run(self) -> None:
        """Connect and reconnect until cancelled; raise XmppAuthError when refused."""
        target = f"{self.host}:{self.port}" if self.host else self.xmpp.boundjid.domain
        failing_since_logged = False
        while not self._closing:
            outcome = await self._attempt()
            if outcome.online:
                self.backoff.reset()
                _LOGGER.info(
                    "connected to %s as %s%s",
                    target,
                    self.xmpp.boundjid.full,
                    " (session resumed)" if outcome.resumed else "",
                )
                failing_since_logged = False
                self._set_connected(True)
                reason = await self._stay_online()
                self._set_connected(False)
                if self._closing:
                    return
                _LOGGER.warning("lost the connection to %s: %s; reconnecting", target, reason)
            elif not failing_since_logged:
                _LOGGER.warning(
                    "cannot connect to %s: %s; retrying with backoff", target, outcome.reason
                )
                failing_since_logged = True
            else:
                _LOGGER.debug("still cannot connect to %s: %s", target, outcome.reason)
            delay = self.backoff.next_delay()
            _LOGGER.debug("next connection attempt in %.1f s", delay)
            await asyncio.sleep(delay)

    def _set_connected(self, connected: bool) -> None:
        if connected:
            self.connected.set()
        else:
            self.connected.clear()
        for listener in tuple(self.state_listeners):
            listener(connected)

    async def _attempt(self) -> _Outcome:
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._disconnected = loop.create_future()
        self._last_error = None
        if self.host:
            self.xmpp.connect(self.host, self.port or 5222)
        else:
            self.xmpp.connect()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                outcome = await self._waiter
        except TimeoutError:
            outcome = _Outcome(False, f"no session within {CONNECT_TIMEOUT:g} s")
        except XmppAuthError:
            self.xmpp.cancel_connection_attempt()
            self.xmpp.abort()
            raise
        if not outcome.online:
            # Stop slixmpp's own rescheduling: this loop owns the retries.
            self.xmpp.cancel_connection_attempt()
            self.xmpp.abort()
        return outcome

    async def _stay_online(self) -> str:
        assert self._disconnected is not None
        while True:
            done, _ = await asyncio.wait({self._disconnected}, timeout=self.keepalive)
            if done:
                return self._disconnected.result()
            try:
                await self.xmpp.plugin["xep_0199"].send_ping(
                    JID(self.xmpp.boundjid.domain), timeout=PING_TIMEOUT
                )
            except IqTimeout:
                _LOGGER.info("the server did not answer a ping within %g s", PING_TIMEOUT)
                self._last_error = "ping timeout"
                self.xmpp.abort()
            except IqError:
                pass  # an error reply still proves the link is alive

    async def close(self, grace: float = 3.0) -> None:
        """Leave cleanly: stop reconnecting, close the stream, wait a little."""
        self._closing = True
        self.xmpp.cancel_connection_attempt()
        if self.xmpp.transport is None:
            return
        try:
            async with asyncio.timeout(grace):
                await self.xmpp.disconnect(wait=grace / 2, reason="hubd is stopping")
        except TimeoutError:
            self.xmpp.abort()


def _describe(error: Any) -> str:
    if error is None:
        return ""
    if isinstance(error, BaseException):
        return str(error) or type(error).__name__
    return str(error)
