"""The federation rig itself: Prosody ``home.localhost`` and ejabberd ``away.localhost`` over s2s.

Both on loopback, no DNS, certificates from one test CA, SASL EXTERNAL both
ways (hubd/testing/federation.py).  Under CI a missing server fails these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import ACCOUNTS
from federated import start_federation, start_federation_here
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout
from xmpp_client import TestClient, connect_client

from hubd.testing.federation import AWAY, HOME, Federation


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    made = start_federation(tmp_path_factory.mktemp("federation"))
    try:
        yield made
    finally:
        made.stop()


async def test_a_message_from_home_reaches_away_and_back(federation: Federation) -> None:
    alice = await connect_client(federation.home, "alice", ACCOUNTS["alice"])
    carol = await connect_client(federation.away, "carol", ACCOUNTS["carol"])  # type: ignore[arg-type]
    try:
        assert str(alice.boundjid.domain) == HOME
        assert str(carol.boundjid.domain) == AWAY
        alice.make_message(mto=carol.boundjid, mbody="hello away", mtype="chat").send()
        got = await carol.wait_message(lambda m: m["body"] == "hello away")
        assert got["from"] == alice.boundjid
        carol.make_message(mto=alice.boundjid, mbody="hello home", mtype="chat").send()
        back = await alice.wait_message(lambda m: m["body"] == "hello home")
        assert back["from"] == carol.boundjid
    finally:
        await alice.disconnect_and_wait()
        await carol.disconnect_and_wait()
    # Each server authenticated the other by its certificate, not by dialback.
    assert "Accepting SASL EXTERNAL identity from away.localhost" in (
        federation.home.log_file.read_text()
    )
    assert "Accepted inbound s2s EXTERNAL authentication home.localhost -> away.localhost" in (
        federation.away.tail()
    )


async def _error_of_a_ping(client: TestClient, domain: str) -> IqError:
    """The error a ping of ``domain`` gets (its server is stopped)."""
    # A ping sent while Prosody still holds the closing stream is lost: ask again then,
    # until a new connection attempt is the one that answers.
    for _ in range(3):
        try:
            await client.plugin["xep_0199"].send_ping(JID(domain), timeout=5)
        except IqTimeout:
            continue
        except IqError as refused:
            return refused
        raise AssertionError(f"a stopped server answered a ping to {domain}")
    raise AssertionError(f"no error reply for a ping to the stopped {domain}")


async def test_a_stopped_peer_gives_an_error_not_a_hang(tmp_path: Path) -> None:
    """With ejabberd gone, the route module bounces what it queued (remote-server-not-found)."""
    own = await start_federation_here(tmp_path / "federation")
    try:
        own.away.stop()
        alice = await connect_client(own.home, "alice", ACCOUNTS["alice"])
        try:
            refused = await _error_of_a_ping(alice, AWAY)
            assert refused.condition == "remote-server-not-found"
            assert "Server-to-server connection failed" in refused.text
        finally:
            await alice.disconnect_and_wait()
    finally:
        own.stop()
