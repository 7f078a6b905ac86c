"""Presence requests put to the owners: the bounds, with a client that never connects.

The messages and presence answers the hub would send are caught (its
``send_message`` and slixmpp's roster-item answers are replaced); the end-to-end behaviour is in
tests/e2e/test_presence_requests.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from slixmpp import JID, ClientXMPP
from slixmpp.roster.item import RosterItem

from hubd.core.access import AccessPolicy
from hubd.core.hub import Hub
from hubd.people.commands import ChatCommands
from hubd.xmpp.presence_requests import MAX_PENDING, PresenceRequests


class Recorder:
    """Catches the questions to the owners and the answers to the requesters."""

    def __init__(self, xmpp: ClientXMPP, monkeypatch: pytest.MonkeyPatch) -> None:
        self.questions: list[tuple[str, str]] = []
        self.answers: list[tuple[str, str]] = []
        monkeypatch.setattr(xmpp, "send_message", self.message)
        answers = self.answers
        monkeypatch.setattr(
            RosterItem, "authorize", lambda item: answers.append((item.jid, "subscribed"))
        )
        monkeypatch.setattr(
            RosterItem, "unauthorize", lambda item: answers.append((item.jid, "unsubscribed"))
        )

    def message(self, mto: JID, mbody: str, mtype: str) -> None:
        self.questions.append((str(mto), mbody))


def _subscribe(xmpp: ClientXMPP, requester: str) -> Any:
    presence = xmpp.make_presence(pfrom=JID(requester), ptype="subscribe")
    return presence


@pytest.fixture
async def scene(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[PresenceRequests, Recorder, ChatCommands]:
    xmpp = ClientXMPP("hub@example.org/hubd", "unused")
    access = AccessPolicy(owners=["alice@example.org", "*@family.example"], readers=["bob@x.org"])
    access.ask_owners = True
    commands = ChatCommands(Hub([]), access)
    recorder = Recorder(xmpp, monkeypatch)
    return PresenceRequests(xmpp, access, commands), recorder, commands


async def test_listed_jids_are_approved_and_strangers_asked_once(
    scene: tuple[PresenceRequests, Recorder, ChatCommands],
) -> None:
    requests, recorder, _ = scene
    await requests._on_subscribe(_subscribe(requests.xmpp, "bob@x.org/phone"))
    assert recorder.answers == [("bob@x.org", "subscribed")]
    for _ in range(3):
        await requests._on_subscribe(_subscribe(requests.xmpp, "Dave@Example.org/laptop"))
    # One question, to the one owner with a bare JID (not *@family.example).
    assert [to for to, _ in recorder.questions] == ["alice@example.org"]
    assert list(requests.pending) == ["dave@example.org"]


async def test_waiting_requests_are_bounded(
    scene: tuple[PresenceRequests, Recorder, ChatCommands],
) -> None:
    requests, recorder, _ = scene
    for n in range(MAX_PENDING + 5):
        await requests._on_subscribe(_subscribe(requests.xmpp, f"s{n}@spam.example"))
    assert len(requests.pending) == MAX_PENDING
    assert len(recorder.questions) == MAX_PENDING
    assert recorder.answers == [(f"s{n}@spam.example", "unsubscribed") for n in range(16, 21)]


async def test_only_owners_answer_and_an_answer_is_remembered(
    scene: tuple[PresenceRequests, Recorder, ChatCommands],
) -> None:
    requests, recorder, commands = scene
    await requests._on_subscribe(_subscribe(requests.xmpp, "dave@example.org"))
    reply = await commands.handle("bob@x.org/phone", "deny dave@example.org")
    assert reply == "deny is for the hub's owners. Type help for your commands."
    assert await commands.handle("alice@example.org/phone", "deny") == (
        "deny whom? Waiting: dave@example.org."
    )
    reply = await commands.handle("alice@example.org/phone", "deny dave@example.org/ignored")
    assert reply == "Refused: dave@example.org does not see the hub."
    await requests._on_subscribe(_subscribe(requests.xmpp, "dave@example.org"))
    assert recorder.answers == [("dave@example.org", "unsubscribed")] * 2
    assert len(recorder.questions) == 1, "not asked again"
    help_text = await commands.handle("alice@example.org/phone", "help")
    assert "allow <jid>" in help_text
    assert "allow" not in await commands.handle("bob@x.org/phone", "help")


async def test_without_ask_owners_strangers_are_refused_at_once(
    scene: tuple[PresenceRequests, Recorder, ChatCommands],
) -> None:
    requests, recorder, _ = scene
    requests.access.ask_owners = False
    await requests._on_subscribe(_subscribe(requests.xmpp, "dave@example.org"))
    assert recorder.answers == [("dave@example.org", "unsubscribed")]
    assert recorder.questions == []
