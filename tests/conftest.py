"""Shared fixtures: a real Prosody server and connected test clients.

A missing ``prosody`` makes these fixtures fail (never skip): the suite must
not pass quietly on a machine that cannot run it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

#: Accounts on every test server: user -> password.  Roles are hubd's.


def _make_server(workdir: Path) -> ProsodyServer:
    """Create a server in ``workdir`` with :data:`ACCOUNTS` registered (not started)."""
    server = ProsodyServer(workdir)
    for user, password in ACCOUNTS.items():
        server.register(user, password)
    return server


@pytest.fixture(scope="session")
def prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodyServer]:
    """One Prosody for the whole session, with :data:`ACCOUNTS` registered."""
    server = _make_server(tmp_path_factory.mktemp("prosody"))
    with server:
        yield server


@pytest.fixture
def restartable_prosody(tmp_path: Path) -> Iterator[ProsodyServer]:
    """A Prosody of this test's own, free to stop and restart."""
    server = _make_server(tmp_path / "prosody")
    with server:
        yield server


@pytest.fixture
async def alice(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """Alice (the owner), connected and available."""
    client = await connect_client(prosody, "alice", ACCOUNTS["alice"])
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def bob(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """Bob (a reader), connected and available."""
    client = await connect_client(prosody, "bob", ACCOUNTS["bob"])
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def carol(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """Carol (a controller), connected and available."""
    client = await connect_client(prosody, "carol", ACCOUNTS["carol"])
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def mallory(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """Mallory (a stranger), connected and available."""
    client = await connect_client(prosody, "mallory", ACCOUNTS["mallory"])
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def hubd(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    """hubd running as a real process, connected to the session's Prosody."""
    async with HubdProcess(tmp_path / "hubd", prosody).running() as process:
        yield process
