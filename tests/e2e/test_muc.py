"""Group chat end to end: hubd joins a room on a real Prosody and answers commands addressed to it.

The hub creates the room (so it is its owner and a moderator, and sees the
occupants' real JIDs, on which access is decided).  Silence is proved with an
ordering barrier: the next line addressed to the hub gets the next reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from textwrap import dedent

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from slixmpp import JID
from xmpp_client import TestClient, connect_client

from hubd.core.config import load_config
from hubd.errors import ConfigError
from hubd.testing.prosody import ProsodyServer

ROOM = "house@conference.localhost"


@pytest.fixture
def muc_prosody(tmp_path: Path) -> Iterator[ProsodyServer]:
    server = ProsodyServer(tmp_path / "prosody", muc=True)
    for user, password in ACCOUNTS.items():
        server.register(user, password)
    with server:
        yield server


@pytest.fixture
async def hub(muc_prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(
        tmp_path / "hubd",
        muc_prosody,
        extra_config=f"rooms: [{{jid: {ROOM}, nick: hub, devices: [porch-light]}}]",
    ).running(rf"joined room {ROOM} as hub") as process:
        yield process


async def occupant(server: ProsodyServer, user: str) -> TestClient:
    """``user`` connected and in the room under their own name."""
    client = await connect_client(server, user, ACCOUNTS[user])
    client.register_plugin("xep_0045")
    await client.plugin["xep_0045"].join_muc_wait(JID(ROOM), user, maxstanzas=0, timeout=10)
    return client


@pytest.fixture
async def people(
    muc_prosody: ProsodyServer, hub: HubdProcess
) -> AsyncIterator[dict[str, TestClient]]:
    clients = {user: await occupant(muc_prosody, user) for user in ("alice", "bob", "mallory")}
    yield clients
    for client in clients.values():
        await client.disconnect_and_wait()


async def say(client: TestClient, text: str) -> str:
    """Say ``text`` in the room; return the hub's next answer to this client there."""
    client.send_message(mto=JID(ROOM), mbody=text, mtype="groupchat")
    nick = client.boundjid.user  # everyone joins under their user name here
    # Everyone in the room sees every answer; this one names its asker.
    reply = await client.wait_message(
        lambda m: (
            m["type"] == "groupchat"
            and m["from"] == JID(f"{ROOM}/hub")
            and m["body"].startswith(f"{nick}: ")
        )
    )
    body: str = reply["body"]
    return body


async def test_room_commands_follow_the_access_lists(
    hub: HubdProcess, people: dict[str, TestClient]
) -> None:
    alice, bob, mallory = people["alice"], people["bob"], people["mallory"]
    assert await say(alice, "hub: read porch-light") == "alice: Porch light: state off (just now)"
    assert await say(alice, "Hub, set porch-light on") == "alice: Porch light: state on"
    await hub.wait_for_log(r"control by alice@localhost/test: porch-light\.state = True done")
    assert await say(bob, "hub: read porch") == "bob: Porch light: state on (just now)"
    assert await say(bob, "hub: set porch-light off") == (
        "bob: set needs control rights; you may read. Type help for your commands."
    )
    assert await say(mallory, "hub: list") == "mallory: Not authorised."
    # Refused attempts are audited too; none may have been carried out.
    assert not [x for x in hub.log().splitlines() if "control by bob" in x and x.endswith(" done")]


async def test_events_of_the_rooms_devices_are_posted(
    hub: HubdProcess, people: dict[str, TestClient]
) -> None:
    alice, bob = people["alice"], people["bob"]
    assert await say(alice, "hub: set porch-light on") == "alice: Porch light: state on"
    posted = await bob.wait_message(
        lambda m: (
            m["type"] == "groupchat"
            and m["from"] == JID(f"{ROOM}/hub")
            and m["body"] == "Porch light: state on"
        )
    )
    assert posted["to"].bare == "bob@localhost"


async def test_lines_not_addressed_to_the_hub_are_left_alone(
    hub: HubdProcess, people: dict[str, TestClient]
) -> None:
    alice = people["alice"]
    alice.send_message(mto=JID(ROOM), mbody="set porch-light on, someone?", mtype="groupchat")
    alice.send_message(mto=JID(ROOM), mbody="hubert: list", mtype="groupchat")
    # The barrier: the hub's next line in the room answers this one.
    assert (await say(alice, "hub: list")).startswith("alice: 2 devices:")
    assert "porch-light.state" not in hub.log()


def test_rooms_must_name_existing_devices(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        dedent(
            """\
            xmpp: {jid: hub@example.org, password_env: HUBD_TEST_PASSWORD}
            rooms:
              - jid: house@conference.example.org
                devices: [front-dor]
            devices:
              - {id: front-door, driver: gpio.input, pin: 27}
            """
        )
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, environ={"HUBD_TEST_PASSWORD": "x"})
    assert str(caught.value) == (
        f"{config}:4: rooms[0].devices[0]: no device 'front-dor'; "
        "did you mean 'front-door'? (allowed: front-door)"
    )
    config.write_text(
        config.read_text().replace("devices: [front-dor]", "devices: [front-door]\n    nick: Hub")
    )
    loaded = load_config(config, environ={"HUBD_TEST_PASSWORD": "x"})
    assert [(r.jid, r.nick, r.devices) for r in loaded.rooms] == [
        ("house@conference.example.org", "Hub", ("front-door",))
    ]
