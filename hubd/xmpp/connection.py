"""Stay connected: connect, keep alive, reconnect with backoff; stop only when told.

slixmpp can reschedule failed connection attempts by itself, but it does not
reconnect a session that dropped, has no jitter, and cannot tell hubd when to
give up.  This supervisor owns the whole cycle instead: one attempt at a time,
an exponential backoff with jitter between attempts (each delay logged), a
ping every :data:`KEEPALIVE_INTERVAL` (a dead link is cut and redialled),
XEP-0198 resumption when the server still holds the session, and a fatal
:class:`XmppAuthError` when the server refuses the password, since retrying
cannot fix that.

A dead link (Wi-Fi gone, packets dropped without a reset) is noticed within
:data:`DEAD_LINK_BOUND`: a ping unanswered for :data:`PING_TIMEOUT`, or an
XEP-0198 acknowledgement request unanswered as long (``hubd/xmpp/acks.py``,
sooner while events flow), cuts it, instead of TCP's retransmissions, which
give up only after about 15 minutes.  The cut socket is reset (``SO_LINGER``
0), so that what the kernel still held for it cannot reach the server later
and arrive twice beside what the resumed stream re-sends.

A certificate that cannot be checked because the system clock is not set (a
Pi without a real-time clock, before NTP) is said in plain words, once; the
next attempt starts as soon as the clock steps (see ``hubd/core/clock.py``).
Certificates are always checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from hubd.core.backoff import Backoff
from hubd.core.clock import ClockWatch, clock_is_plausible
from hubd.errors import XmppAuthError

_LOGGER = logging.getLogger(__name__)

CONNECT_TIMEOUT = 45.0
#: Seconds between keepalive pings (XEP-0199) to the server.
KEEPALIVE_INTERVAL = 15.0
#: Seconds a ping, or an XEP-0198 acknowledgement request, may go unanswered.
PING_TIMEOUT = 10.0
#: The longest a dead link goes unnoticed (seconds): a ping's interval plus its
#: timeout, and room for one round trip and a busy Pi's loop.
DEAD_LINK_BOUND = KEEPALIVE_INTERVAL + PING_TIMEOUT + 5.0
#: While the clock is to blame, how often it is looked at (seconds).
CLOCK_POLL = 1.0
_CERT_NOT_YET_VALID = 9  # OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID
_CERT_HAS_EXPIRED = 10  # X509_V_ERR_CERT_HAS_EXPIRED


class _ExplainedCertError(logging.Filter):
    """Drop slixmpp's ``CERT: Invalid certificate trust chain.``: hubd says why instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "CERT: Invalid certificate trust chain."


logging.getLogger("slixmpp.xmlstream.xmlstream").addFilter(_ExplainedCertError())


@dataclass(frozen=True, slots=True)
class _Outcome:
    online: bool
    reason: str
    resumed: bool = False
    clock: bool = False  # the certificate could not be checked: the clock is not set


class ConnectionSupervisor:
    """Keeps one slixmpp client connected for as long as it runs."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        *,
        host: str | None,
        port: int | None,
        keepalive: float = KEEPALIVE_INTERVAL,
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
        self._clock_blamed = False
        self._clock = ClockWatch()  # a step since the last attempt began ends a wait

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
        self._last_error, self._clock_blamed = describe_tls_failure(error, ClockWatch().now())

    def _on_stream_error(self, error: Any) -> None:
        try:
            self._last_error = f"stream error: {error['condition']} {error['text']}".strip()
        except (KeyError, TypeError):
            self._last_error = "stream error"

    def _on_disconnected(self, reason: Any) -> None:
        if self._last_error is None and isinstance(reason, ssl.SSLCertVerificationError):
            self._on_ssl_invalid(reason)  # some loops (uvloop) report the loss first
        text = self._last_error or _describe(reason) or "connection closed"
        self._settle(_Outcome(False, text, clock=self._clock_blamed))
        if self._disconnected is not None and not self._disconnected.done():
            self._disconnected.set_result(text)

    async def run(self) -> None:
        """Connect and reconnect until cancelled; raise XmppAuthError when refused."""
        target = f"{self.host}:{self.port}" if self.host else self.xmpp.boundjid.domain
        logged_reason: str | None = None
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
                logged_reason = None
                self._set_connected(True)
                reason = await self._stay_online()
                self._set_connected(False)
                if self._closing:
                    return
                _LOGGER.warning("lost the connection to %s: %s; reconnecting", target, reason)
                delay = self.backoff.next_delay()
                _LOGGER.info("next connection attempt in %.1f s", delay)
            elif outcome.reason != logged_reason:
                # Said once, in plain words; the attempts after it only show the backoff.
                delay = self.backoff.next_delay()
                _LOGGER.warning(
                    "cannot connect to %s: %s; next connection attempt in %.1f s",
                    target,
                    outcome.reason,
                    delay,
                )
                logged_reason = outcome.reason
            else:
                delay = self.backoff.next_delay()
                _LOGGER.info("still cannot connect; next connection attempt in %.1f s", delay)
            await self._pause(delay, wait_for_clock=outcome.clock)

    async def _pause(self, delay: float, *, wait_for_clock: bool) -> None:
        """Wait ``delay`` s; when the clock is to blame, only until it is set."""
        if not wait_for_clock:
            await asyncio.sleep(delay)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while self._clock.check() is None:
            if loop.time() >= deadline:
                return
            await asyncio.sleep(min(CLOCK_POLL, max(deadline - loop.time(), 0.0)))
        _LOGGER.info(
            "the system clock was set (it says %s now): connecting",
            self._clock.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
        self.backoff.reset()

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
        self._clock_blamed = False
        self._clock.check()  # from here on, a step means the clock was set
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
                self.cut_dead_link(f"no answer to a ping within {PING_TIMEOUT:g} s")
            except IqError:
                pass  # an error reply still proves the link is alive

    def cut_dead_link(self, reason: str) -> None:
        """The server stopped answering: reset the connection and redial."""
        if self.xmpp.transport is None:
            return
        _LOGGER.info("the link looks dead (%s): cutting it", reason)
        self._last_error = f"the link went dead ({reason})"
        sock = self.xmpp.transport.get_extra_info("socket")
        if sock is not None:
            # A reset, not a close: nothing the kernel still holds for this socket
            # may reach the server after the stream was resumed.
            with contextlib.suppress(OSError):  # already gone
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.xmpp.abort()

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


def describe_tls_failure(error: Any, now: datetime) -> tuple[str, bool]:
    """Why the server's certificate was refused, in plain words; True: the clock is to blame."""
    code = getattr(error, "verify_code", None)
    day = now.strftime("%Y-%m-%d")
    if not clock_is_plausible(now):
        return (
            f"the system clock says {day}, so the server's certificate cannot be checked;"
            " waiting for the clock to be set",
            True,
        )
    if code == _CERT_NOT_YET_VALID:
        return (
            f"the server's certificate is not valid yet by the system clock ({day});"
            " if that date is wrong, the clock is not set yet: waiting for it",
            True,
        )
    if code == _CERT_HAS_EXPIRED:
        return f"the server's certificate has expired (the system clock says {day})", False
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"TLS certificate not trusted: {error.verify_message}", False
    return f"TLS certificate not trusted: {_describe(error)}", False


def _describe(error: Any) -> str:
    if error is None:
        return ""
    if isinstance(error, BaseException):
        return str(error) or type(error).__name__
    return str(error)
