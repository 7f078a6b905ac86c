"""Two XMPP servers federated over s2s on loopback: Prosody and ejabberd.

Prosody serves ``home.localhost``, ejabberd ``away.localhost``.

Everything lives under one directory (throwaway): one test CA, each server's
certificate from it (serverAuth and clientAuth: a server opening an s2s link
shows its certificate as a TLS client), each server's s2s port free on
127.0.0.1 and told to the other without DNS (a route module on Prosody, see
:mod:`hubd.testing.prosody_s2s`; an SRV record in ejabberd's Erlang resolver,
see :mod:`hubd.testing.ejabberd`).  STARTTLS is required both ways and the
servers authenticate each other with SASL EXTERNAL on those certificates.

An s2s link is only opened by the first stanza across, and that takes a moment:
:meth:`Federation.wait_linked` pings across both ways (with a client the
caller brings: only ``hubd.xmpp`` and the tests speak XMPP) until both answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from hubd.testing.certificates import make_ca
from hubd.testing.ejabberd import EjabberdServer
from hubd.testing.prosody_s2s import FederatedProsody

__all__ = ["AWAY", "HOME", "Federation", "FederationError"]

log = logging.getLogger(__name__)

HOME = "home.localhost"
AWAY = "away.localhost"
#: Seconds one ping across may take before it is sent again.
PING_TIMEOUT = 5.0

#: Sends an XMPP ping to a domain; raises if it is not answered.
Ping = Callable[[str], Awaitable[object]]


class FederationError(RuntimeError):
    """The two servers did not federate in time."""


class Federation:
    """Prosody on :data:`HOME` and ejabberd on :data:`AWAY`, each routing s2s to the other."""

    def __init__(self, workdir: Path) -> None:
        """Describe both servers under ``workdir``; nothing is made or started yet."""
        self.workdir = Path(workdir).resolve()
        ca_dir = self.workdir / "ca"
        self.ca_file = ca_dir / "ca.pem"
        self.ca_key = ca_dir / "ca.key"
        self.home = FederatedProsody(self.workdir / "home", HOME, self.ca_file, self.ca_key)
        self.away = EjabberdServer(
            self.workdir / "away", AWAY, shared_ca=(self.ca_file, self.ca_key)
        )
        assert self.away.s2s_port is not None
        self.home.routes = {AWAY: self.away.s2s_port}
        self.away.routes = {HOME: self.home.s2s_port}
        #: Seconds the last :meth:`wait_linked` took until both pings were answered.
        self.last_link_seconds: float | None = None

    def __repr__(self) -> str:
        return f"<Federation {self.home!r} <-> {self.away!r}>"

    def _make_ca(self) -> None:
        if not (self.ca_file.is_file() and self.ca_key.is_file()):
            self.ca_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            make_ca(self.ca_file.parent, self.ca_file, self.ca_key)

    def register(self, server: FederatedProsody | EjabberdServer, user: str, pw: str) -> None:
        """Create ``user`` on ``server`` (before :meth:`start` for the ejabberd one)."""
        self._make_ca()
        server.register(user, pw)

    def start(self) -> None:
        """Start both servers (each bounded by its own deadline); stops both on failure."""
        self._make_ca()
        try:
            self.home.start()
            self.away.start()
        except BaseException:
            self.stop()
            raise

    async def wait_linked(
        self,
        from_home: Ping,
        from_away: Ping,
        timeout: float = 60.0,  # noqa: ASYNC109 - bounds the whole set-up
    ) -> None:
        """Ping :data:`AWAY` from home and :data:`HOME` from away until both answer.

        ``from_home``/``from_away`` send one XMPP ping (XEP-0199) to the domain
        given, through a client of that side, and raise when it is not answered.
        Raises :class:`FederationError` with both servers' log tails after
        ``timeout`` seconds.
        """
        t0 = time.monotonic()
        errors: list[str] = []

        async def until_answered(ping: Ping, domain: str) -> None:
            while True:
                try:
                    async with asyncio.timeout(PING_TIMEOUT):
                        await ping(domain)
                    return
                except Exception as err:  # any failure: ask again until the deadline
                    errors.append(f"ping {domain}: {type(err).__name__}: {err}")
                    # An error reply may come at once (no link yet): not a busy loop.
                    await asyncio.sleep(0.2)

        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    until_answered(from_home, AWAY), until_answered(from_away, HOME)
                )
        except TimeoutError:
            raise FederationError(
                f"{HOME} and {AWAY} did not federate within {timeout:g} s; "
                f"last errors: {errors[-4:]}\n{self.diagnostics()}"
            ) from None
        self.last_link_seconds = time.monotonic() - t0
        log.info("%s and %s federated after %.2fs", HOME, AWAY, self.last_link_seconds)

    def diagnostics(self) -> str:
        """The tails of both servers' logs."""
        home_log = self.home.log_file
        tail = home_log.read_text(errors="replace").splitlines()[-40:] if home_log.exists() else []
        return f"--- {home_log} ---\n" + "\n".join(tail) + "\n" + self.away.tail()

    def stop(self) -> None:
        """Stop both servers (either may already be stopped)."""
        try:
            self.away.stop()
        finally:
            self.home.stop()

    def __enter__(self) -> Self:
        """Start both servers and return the federation."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop both servers."""
        self.stop()
