"""The real-Prosody harness works: messages, IQs, restart, bad passwords."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from slixmpp import JID
from slixmpp.stanza import Message
from xmpp_client import AuthenticationFailed, TestClient, connect_client

from hubd.testing.prosody import ProsodyError, ProsodyServer
from hubd.testing.prosody_accounts import write_accounts


async def test_two_clients_exchange_a_chat_message(
    prosody: ProsodyServer, alice: TestClient
) -> None:
    bob = await connect_client(prosody, "bob", "bobpass")
    try:
        alice.send_message(mto=JID(prosody.jid("bob")), mbody="hello bob", mtype="chat")
        got = await bob.wait_message(lambda m: m["body"] == "hello bob", timeout=5)
        assert got["from"].bare == prosody.jid("alice")
        assert got["type"] == "chat"

        bob.send_message(mto=got["from"], mbody="hi alice", mtype="chat")
        reply = await alice.wait_message(lambda m: m["body"] == "hi alice", timeout=5)
        assert reply["from"] == bob.boundjid
    finally:
        await bob.disconnect_and_wait()


async def test_wait_message_keeps_non_matching_messages(
    prosody: ProsodyServer, alice: TestClient
) -> None:
    bob = await connect_client(prosody, "bob", "bobpass")
    try:
        for body in ("one", "two"):
            bob.send_message(mto=alice.boundjid, mbody=body, mtype="chat")

        def body_is(text: str) -> Callable[[Message], bool]:
            return lambda m: m["body"] == text

        assert (await alice.wait_message(body_is("two"), timeout=5))["body"] == "two"
        assert (await alice.wait_message(body_is("one"), timeout=5))["body"] == "one"
        with pytest.raises(TimeoutError):
            await alice.wait_message(body_is("three"), timeout=0.2)
    finally:
        await bob.disconnect_and_wait()


async def test_ping_round_trip(prosody: ProsodyServer, alice: TestClient) -> None:
    rtt = await alice.plugin["xep_0199"].ping(jid=JID(prosody.domain), timeout=5)
    assert 0 <= rtt < 1.0  # nagle off: a loopback round trip takes milliseconds


async def test_restart_keeps_port_and_accepts_clients(
    restartable_prosody: ProsodyServer,
) -> None:
    server = restartable_prosody
    port = server.port
    first = await connect_client(server, "carol", "carolpass")
    lost = asyncio.ensure_future(first.wait_until("disconnected", 10))

    # In a thread: Prosody closes streams on shutdown and waits (≈1 s) for the
    # client's reply, which a blocked event loop could not send.
    await asyncio.to_thread(server.restart)

    assert server.running
    assert server.port == port
    await lost  # the old session saw the server go away
    await first.disconnect_and_wait()
    again = await connect_client(server, "carol", "carolpass")
    try:
        rtt = await again.plugin["xep_0199"].ping(jid=JID(server.domain), timeout=5)
        assert rtt < 1.0
    finally:
        await again.disconnect_and_wait()


async def test_wrong_password_fails_quickly(prosody: ProsodyServer) -> None:
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        await connect_client(prosody, "alice", "not-the-password", timeout=10)
    assert time.monotonic() - t0 < 5


async def test_register_while_running(prosody: ProsodyServer) -> None:
    prosody.register("dave", "davepass")
    dave = await connect_client(prosody, "dave", "davepass")
    await dave.disconnect_and_wait()


async def test_accounts_written_in_bulk_log_in(prosody: ProsodyServer) -> None:
    # bench/fanout.py's 1,000 subscribers: files written the way prosodyctl writes them.
    write_accounts(prosody.data_dir, prosody.domain, {"bulk1": "one", "bulk-2.x": "two"})
    for user, password in (("bulk1", "one"), ("bulk-2.x", "two")):
        client = await connect_client(prosody, user, password)
        await client.disconnect_and_wait()
    with pytest.raises(AuthenticationFailed):
        await connect_client(prosody, "bulk1", "two", timeout=10)
    with pytest.raises(ValueError, match="plain lower-case"):
        write_accounts(prosody.data_dir, prosody.domain, {"Bulk": "x"})


def _occupy(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


def test_first_start_moves_off_a_taken_port(tmp_path: Path) -> None:
    server = ProsodyServer(tmp_path)
    taken = server.port
    with _occupy(server.host, taken), server:
        assert server.running
        assert server.port != taken


def test_restart_on_a_taken_port_fails_with_the_log(tmp_path: Path) -> None:
    server = ProsodyServer(tmp_path)
    server.start()
    server.stop()
    assert not server.running
    with _occupy(server.host, server.port), pytest.raises(ProsodyError) as err:
        server.start(timeout=5)
    assert "could not listen" in str(err.value)
    assert "Failed to open server port" in str(err.value)  # the log's tail is included
    assert not server.running
