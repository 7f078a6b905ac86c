"""Two federated test servers, started and linked: Prosody home.localhost, ejabberd away.localhost.

Every account of :data:`accounts.ACCOUNTS` exists on both.  A missing server
raises (ProsodyError / EjabberdError): the tests fail, never skip.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from accounts import ACCOUNTS
from slixmpp import JID
from xmpp_client import connect_client

from hubd.testing.federation import Federation

#: The account that pings across from each side while the link is set up.
PINGER = "bob"


async def _link(federation: Federation) -> None:
    home = await connect_client(federation.home, PINGER, ACCOUNTS[PINGER], resource="link")
    away = await connect_client(
        federation.away,  # type: ignore[arg-type]
        PINGER,
        ACCOUNTS[PINGER],
        resource="link",
    )

    def pinger(client: Any) -> Any:
        # XEP-0199 ping of the other server itself: it answers once s2s is up.
        return lambda domain: client.plugin["xep_0199"].send_ping(JID(domain), timeout=5)

    try:
        await federation.wait_linked(pinger(home), pinger(away))
    finally:
        await home.disconnect_and_wait()
        await away.disconnect_and_wait()


def _started(workdir: Path) -> Federation:
    federation = Federation(workdir)
    for user, password in ACCOUNTS.items():
        federation.register(federation.home, user, password)
        federation.register(federation.away, user, password)
    federation.start()
    return federation


def start_federation(workdir: Path) -> Federation:
    """Both servers started with :data:`ACCOUNTS` and linked both ways (stopped on failure).

    For (sync) module fixtures: runs its own event loop for the pings.
    """
    federation = _started(workdir)
    try:
        asyncio.run(_link(federation))
    except BaseException:
        federation.stop()
        raise
    return federation


async def start_federation_here(workdir: Path) -> Federation:
    """:func:`start_federation` from a test's own event loop (servers start in a thread)."""
    federation = await asyncio.to_thread(_started, workdir)
    try:
        await _link(federation)
    except BaseException:
        federation.stop()
        raise
    return federation
