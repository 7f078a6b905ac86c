"""An independent XMPP test client, built from plain slixmpp (no hubd code).

Tests use it to talk to hubd the way a person's XMPP client would.  Every wait
is on an event with a timeout; nothing sleeps and hopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp.stanza import Message, Presence
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody import ProsodyServer

log = logging.getLogger(__name__)

MessagePredicate = Callable[[Message], bool]

PLUGINS = ("xep_0030", "xep_0199", "xep_0004", "xep_0050")


class ClientConnectError(RuntimeError):
    """The test client could not open a session."""


class AuthenticationFailed(ClientConnectError):
    """The server rejected the credentials (slixmpp's ``failed_all_auth``)."""


class TestClient(slixmpp.ClientXMPP):
    """A slixmpp client that trusts one CA, uses STARTTLS and queues messages."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, jid: str, password: str, *, ca_file: Path) -> None:
        """Make a client for ``jid``; it trusts only ``ca_file`` (verification stays on)."""
        super().__init__(jid, password)
        self.ca_certs = ca_file
        self.enable_direct_tls = False  # STARTTLS on the c2s port
        self.enable_starttls = True
        self.enable_plaintext = False
        for plugin in PLUGINS:
            self.register_plugin(plugin)
        #: Every ``message`` stanza received, in order.
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self._unmatched: list[Message] = []
        # slixmpp's "message" event fires only for messages with a <body/>;
        # IoT payloads come without one, so every message stanza is queued.
        self.register_handler(
            Callback(
                "test: every message", MatchXPath("{jabber:client}message"), self._queue_message
            )
        )

    def _queue_message(self, msg: Message) -> None:
        self.messages.put_nowait(msg)

    async def wait_message(
        self,
        predicate: MessagePredicate | None = None,
        timeout: float = 10,  # noqa: ASYNC109 - a per-call deadline is the point here
    ) -> Message:
        """Return the first received message for which ``predicate`` is true.

        Messages taken from :attr:`messages` that do not match are kept, in
        order, for later calls.  Raises :class:`TimeoutError` after ``timeout``
        seconds.
        """
        match = predicate or (lambda _msg: True)
        for i, msg in enumerate(self._unmatched):
            if match(msg):
                return self._unmatched.pop(i)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    msg = await self.messages.get()
                    if match(msg):
                        return msg
                    self._unmatched.append(msg)
        except TimeoutError:
            seen = [str(m) for m in self._unmatched]
            raise TimeoutError(
                f"{self.boundjid}: no matching message within {timeout}s; unmatched so far: {seen}"
            ) from None

    async def disconnect_and_wait(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Close the stream and wait until the connection is gone."""
        self.cancel_connection_attempt()  # no reconnection attempts from now on
        if self.transport is not None:
            waiter = asyncio.ensure_future(self.wait_until("disconnected", timeout))
            await self.disconnect(wait=timeout)
            with contextlib.suppress(TimeoutError):
                await waiter
            if self.transport is not None:  # pragma: no cover - server never closed
                self.abort()
        filters = self._run_out_filters
        if filters is not None and not filters.done():
            filters.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await filters


async def connect_client(
    server: ProsodyServer,
    user: str,
    password: str,
    *,
    resource: str = "test",
    timeout: float = 10.0,  # noqa: ASYNC109 - bounds the whole login
    make: Callable[..., TestClient] | None = None,
) -> TestClient:
    """Connect ``user`` to ``server``, open a session and become available.

    Returns once the server has reflected the client's initial presence, so
    messages to the bare JID reach it.  Raises :class:`AuthenticationFailed`
    on bad credentials, :class:`ClientConnectError` if the connection fails,
    :class:`TimeoutError` after ``timeout`` seconds.  ``make`` builds the client
    (default :class:`TestClient`; e.g. an OMEMO one, tests/omemo_client.py).
    """
    client = (make or TestClient)(
        f"{server.jid(user)}/{resource}", password, ca_file=server.ca_file
    )
    loop = asyncio.get_running_loop()
    started: asyncio.Future[None] = loop.create_future()
    available: asyncio.Future[None] = loop.create_future()

    def fail(exc: Exception) -> None:
        if not started.done():
            started.set_exception(exc)

    def on_session_start(_event: Any) -> None:
        if not started.done():
            started.set_result(None)

    def on_failed_all_auth(_event: Any) -> None:
        fail(AuthenticationFailed(f"authentication failed for {server.jid(user)}"))

    def on_connection_failed(error: Any) -> None:
        fail(ClientConnectError(f"connection to {server.host}:{server.port} failed: {error}"))

    def on_disconnected(reason: Any) -> None:
        fail(ClientConnectError(f"disconnected before the session started: {reason}"))

    def on_presence(pres: Presence) -> None:
        if pres["from"] == client.boundjid and not available.done():
            available.set_result(None)

    handlers: list[tuple[str, Callable[[Any], None]]] = [
        ("session_start", on_session_start),
        ("failed_all_auth", on_failed_all_auth),
        ("connection_failed", on_connection_failed),
        ("disconnected", on_disconnected),
        ("presence_available", on_presence),
    ]
    for event, handler in handlers:
        client.add_event_handler(event, handler)
    try:
        async with asyncio.timeout(timeout):
            client.connect(server.host, server.port)
            await started
            client.send_presence()
            await available
    except BaseException:
        await client.disconnect_and_wait()
        raise
    finally:
        for event, handler in handlers:
            client.del_event_handler(event, handler)
    log.debug("%s connected to %s:%d", client.boundjid, server.host, server.port)
    return client
