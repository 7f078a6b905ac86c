"""``access.ask_owners``: a stranger's presence subscription is put to the owners by chat.

The requesters are accounts of their own (``newcomer``, ``pest``): the hub's
answers change rosters on the shared server, and other tests' accounts must
stay as they were.  Absence of a second question is shown by the log, which
the hub writes once per question.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hubd_process import HubdProcess
from slixmpp import JID
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

HUB = "hub@localhost"


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(
        tmp_path / "hubd", prosody, access_extra="ask_owners: true"
    ).running() as process:
        yield process


async def _stranger(prosody: ProsodyServer, user: str) -> TestClient:
    prosody.register(user, f"{user}pass")
    client = await connect_client(prosody, user, f"{user}pass", resource="asks")
    # Prosody passes subscription answers only to resources that fetched the roster.
    await client.get_roster(timeout=10)
    return client


def _answer_from_hub(client: TestClient, kind: str) -> asyncio.Future[Any]:
    """A future for the next presence of ``kind`` (subscribed, unsubscribed) from the hub."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_presence(presence: Any) -> None:
        if presence["from"].bare == HUB and presence["type"] == kind and not future.done():
            future.set_result(presence)

    client.add_event_handler("presence", on_presence)
    return future


async def _body_from_hub(client: TestClient, contains: str) -> str:
    message = await client.wait_message(lambda m: m["from"].bare == HUB and contains in m["body"])
    body: str = message["body"]
    return body


async def _say(client: TestClient, text: str, reply_contains: str) -> str:
    client.send_message(mto=JID(HUB), mbody=text, mtype="chat")
    return await _body_from_hub(client, reply_contains)


async def test_an_owner_allows_a_stranger_to_see_the_hub_online(
    hub: HubdProcess, prosody: ProsodyServer, alice: TestClient, bob: TestClient
) -> None:
    newcomer = await _stranger(prosody, "newcomer")
    try:
        subscribed = _answer_from_hub(newcomer, "subscribed")
        newcomer.send_presence(pto=HUB, ptype="subscribe")
        question = await _body_from_hub(alice, "newcomer@localhost asks")
        assert question == (
            "newcomer@localhost asks to see when the hub is online (a presence subscription; "
            "it gives no access to devices). Reply: allow newcomer@localhost, "
            "or deny newcomer@localhost."
        )
        # A reader may not answer; the owner may.
        refused = await _say(bob, "allow newcomer@localhost", "owners")
        assert refused == "allow is for the hub's owners. Type help for your commands."
        reply = await _say(alice, "Allow newcomer@localhost", "newcomer@localhost")
        assert reply.startswith("newcomer@localhost now sees when the hub is online.")
        await asyncio.wait_for(subscribed, 10)
        await hub.wait_for_log(
            r"approved the presence subscription of newcomer@localhost "
            r"\(allowed by alice@localhost\)"
        )
        # Being allowed to see presence is not being allowed to read.
        newcomer.send_message(mto=JID(HUB), mbody="list", mtype="chat")
        assert await _body_from_hub(newcomer, "") == "Not authorised."
        # Nobody waits any more.
        reply = await _say(alice, "allow newcomer@localhost", "waiting")
        assert reply == "newcomer@localhost is not waiting. Waiting: none."
    finally:
        newcomer.send_presence(pto=HUB, ptype="unsubscribe")
        await newcomer.plugin["xep_0199"].ping(jid=JID(hub.jid), timeout=10)
        await newcomer.disconnect_and_wait()


async def test_a_denied_stranger_asking_again_is_refused_without_a_question(
    hub: HubdProcess, prosody: ProsodyServer, alice: TestClient
) -> None:
    pest = await _stranger(prosody, "pest")
    try:
        unsubscribed = _answer_from_hub(pest, "unsubscribed")
        pest.send_presence(pto=HUB, ptype="subscribe")
        await _body_from_hub(alice, "pest@localhost asks")
        reply = await _say(alice, "deny pest@localhost", "pest@localhost")
        assert reply == "Refused: pest@localhost does not see the hub."
        await asyncio.wait_for(unsubscribed, 10)
        hub.mark()
        pest.send_presence(pto=HUB, ptype="subscribe")
        await hub.wait_for_log(
            r"refused the presence subscription of pest@localhost \(denied by an owner before\)"
        )
        assert "asked the owners" not in hub.log()[hub._offset :]
    finally:
        await pest.disconnect_and_wait()


async def test_without_ask_owners_strangers_are_refused_and_allow_is_unknown_to_owners(
    hubd: HubdProcess, alice: TestClient
) -> None:
    # hubd: the default fixture, ask_owners off. The command exists, nobody waits.
    reply = await _say(alice, "allow someone@localhost", "waiting")
    assert reply == "someone@localhost is not waiting. Waiting: none."
