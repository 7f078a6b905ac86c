"""Chat commands end to end: a real hubd, a real Prosody, plain slixmpp clients typing lines.

Owner (alice), controller (carol), reader (bob) and stranger (mallory) each
send what a person would type; the replies are checked word for word where
the wording is the point.  Absence of a reply is proved with an XMPP ping as
an ordering barrier (the hub answers a message before it reads the next
stanza, and the server keeps one sender's stanzas in order), never by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element

import pytest
from hubd_process import WITH_DIMMER, HubdProcess
from slixmpp import JID
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

HUB = "hub@localhost"


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    """hubd with a switch, a contact and a dimmer."""
    async with HubdProcess(tmp_path / "hubd", prosody, devices=WITH_DIMMER).running() as process:
        yield process


def _from_hub(message: object) -> bool:
    return message["from"].bare == HUB and bool(message["body"])  # type: ignore[index]


async def ask(
    client: TestClient,
    text: str,
    *,
    to: str = HUB,
    mtype: Literal["chat", "normal"] = "chat",
    delay: datetime | None = None,
) -> str:
    """Type ``text`` to the hub; return its reply (which must come to this full JID)."""
    message = client.make_message(mto=to, mbody=text, mtype=mtype)
    if delay is not None:
        stamp = Element("{urn:xmpp:delay}delay")
        stamp.set("from", "localhost")
        stamp.set("stamp", delay.strftime("%Y-%m-%dT%H:%M:%SZ"))
        message.xml.append(stamp)
    message.send()
    reply = await client.wait_message(_from_hub)
    assert reply["to"] == client.boundjid
    assert reply["type"] == mtype
    body: str = reply["body"]
    return body


async def no_reply_pending(client: TestClient, hub: HubdProcess) -> None:
    """Assert the hub has sent this client no chat message so far (a ping is the barrier)."""
    await client.plugin["xep_0199"].ping(jid=JID(hub.jid), timeout=10)
    while not client.messages.empty():
        message = client.messages.get_nowait()
        assert not _from_hub(message), f"unexpected message from the hub: {message['body']}"


async def test_owner_reads_sets_and_reads_back(hub: HubdProcess, alice: TestClient) -> None:
    assert await ask(alice, "read porch-light") == "Porch light: state off (just now)"
    assert await ask(alice, "set porch-light state on") == "Porch light: state on"
    assert await ask(alice, "read Porch Light") == "Porch light: state on (just now)"
    assert await ask(alice, "SET porch off") == "Porch light: state off"
    assert await ask(alice, "set hall level 0.25") == "Hall dimmer: level 0.25"
    await hub.wait_for_log(r"control by alice@localhost/test: porch-light\.state = True done")
    await hub.wait_for_log(r"control by alice@localhost/test: dimmer\.level = 0\.25 done")


async def test_list_and_help(hub: HubdProcess, alice: TestClient) -> None:
    await ask(alice, "set dimmer level 0.5")
    listing = await ask(alice, "list")
    assert listing.splitlines() == [
        "3 devices:",
        "- porch-light (Porch light): state off",
        "- front-door: state off",
        "- dimmer (Hall dimmer): level 0.500",  # the decimals the driver reports
    ]
    help_text = await ask(alice, "help")
    assert help_text.splitlines()[:5] == [
        "Commands:",
        "- help [<command>]: what you can type",
        "- list: every device and its latest values",
        "- read <device> [<field>]: read a device now",
        "- set <device> <field> <value>: control a device",
    ]


async def test_errors_say_what_to_type(hub: HubdProcess, alice: TestClient) -> None:
    assert await ask(alice, "hello") == "Unknown command 'hello'. Type help for the commands."
    assert await ask(alice, "set porch-light colour red") == (
        "porch-light has no field 'colour'; fields: state. Try: set porch-light state on"
    )
    assert await ask(alice, "set porch-light state maybe") == (
        "Cannot set porch-light state to 'maybe': expected on/off (true/false), got 'maybe'. "
        "Try: set porch-light state on"
    )
    assert await ask(alice, "set dimmer level 2") == (
        "Cannot set dimmer level to '2': 2 is above the maximum 1. Try: set dimmer level 0.5"
    )
    assert await ask(alice, "set front-door state on") == (
        "front-door state is read-only (it has nothing to set). Try: read front-door"
    )
    assert (await ask(alice, "read attic")).startswith(
        "No device 'attic'. Devices: porch-light, front-door, dimmer."
    )
    assert " done" not in hub.log()  # refusals are audited, nothing was carried out


async def test_controller_may_set(hub: HubdProcess, carol: TestClient) -> None:
    assert await ask(carol, "set porch-light on") == "Porch light: state on"
    await hub.wait_for_log(r"control by carol@localhost/test: porch-light\.state = True done")


async def test_reader_reads_but_does_not_set(hub: HubdProcess, bob: TestClient) -> None:
    help_text = await ask(bob, "help")
    assert "read <device>" in help_text
    assert "set <device>" not in help_text
    assert await ask(bob, "read front-door") == "front-door: state off (just now)"
    assert await ask(bob, "set porch-light state on") == (
        "set needs control rights; you may read. Type help for your commands."
    )
    assert await ask(bob, "read porch-light") == "Porch light: state off (just now)"
    # Refused attempts are audited too; none may have been carried out.
    assert not [x for x in hub.log().splitlines() if "control by bob" in x and x.endswith(" done")]


async def test_stranger_gets_one_short_refusal(hub: HubdProcess, mallory: TestClient) -> None:
    assert await ask(mallory, "list") == "Not authorised."
    # The second refusal is rate-limited: nothing comes back, and nothing happens.
    mallory.send_message(mto=HUB, mbody="set porch-light state on", mtype="chat")
    mallory.send_message(mto=HUB, mbody="read attic", mtype="chat")
    await no_reply_pending(mallory, hub)
    assert "porch-light.state" not in hub.log()
    await hub.wait_for_log(r"refused a chat command from mallory@localhost/test")


async def test_reply_goes_to_the_full_jid_that_asked(
    hub: HubdProcess, alice: TestClient, prosody: ProsodyServer
) -> None:
    tablet = await connect_client(prosody, "alice", "alicepass", resource="tablet")
    try:
        assert await ask(alice, "read porch-light", to=hub.jid) == (
            "Porch light: state off (just now)"
        )
        await no_reply_pending(tablet, hub)
        assert await ask(tablet, "read front-door") == "front-door: state off (just now)"
        await no_reply_pending(alice, hub)
    finally:
        await tablet.disconnect_and_wait()


async def test_normal_messages_get_normal_replies(hub: HubdProcess, alice: TestClient) -> None:
    assert await ask(alice, "read porch-light", mtype="normal") == (
        "Porch light: state off (just now)"
    )


async def test_a_late_control_is_not_carried_out(hub: HubdProcess, alice: TestClient) -> None:
    sent = datetime.now(UTC) - timedelta(minutes=30)
    reply = await ask(alice, "set porch-light on", delay=sent)
    assert reply == (
        f"Not done: you sent this at {sent:%H:%M} UTC and it arrived only now. Send it again."
    )
    assert await ask(alice, "read porch-light", delay=sent) == "Porch light: state off (just now)"
    assert "porch-light.state" not in hub.log()


async def test_machine_messages_are_not_commands(hub: HubdProcess, alice: TestClient) -> None:
    # An XEP-0325 set in a message is the machine interface's: no chat reply,
    # even when a client adds a body for people.
    message = alice.make_message(mto=hub.jid, mbody="turning the light on", mtype="chat")
    control = Element("{urn:xmpp:iot:control}set")
    node = Element("{urn:xmpp:iot:control}node")
    node.set("nodeId", "porch-light")
    value = Element("{urn:xmpp:iot:control}boolean")
    value.set("name", "state")
    value.set("value", "true")
    control.extend([node, value])
    message.xml.append(control)
    message.send()
    await hub.wait_for_log(r"control by alice@localhost/test: porch-light\.state = True done")
    await no_reply_pending(alice, hub)


async def test_watch_sends_events_as_chat_until_unwatched(
    hub: HubdProcess, alice: TestClient, carol: TestClient
) -> None:
    reply = await ask(alice, "watch porch-light")
    assert reply == "Watching Porch light (any change). Type unwatch porch-light to stop."
    assert await ask(carol, "set porch-light state on") == "Porch light: state on"
    event = await alice.wait_message(_from_hub)
    assert event["type"] == "chat"
    assert event["body"] == "Porch light: state on"
    assert await ask(alice, "watching") == "You watch:\n- Porch light: any change"
    assert await ask(alice, "unwatch porch") == "Stopped watching Porch light."
    assert await ask(alice, "watching") == "You watch nothing. Try: watch <device>"
    assert await ask(carol, "set porch-light state off") == "Porch light: state off"
    await no_reply_pending(alice, hub)


async def test_watch_a_level_fires_once_per_crossing(
    hub: HubdProcess, bob: TestClient, carol: TestClient
) -> None:
    reply = await ask(bob, "watch hall level > 0.5")
    assert reply == "Watching Hall dimmer (level > 0.5). Type unwatch dimmer to stop."
    await ask(carol, "set hall level 0.4")  # below: nothing
    await ask(carol, "set hall level 0.7")  # crosses above: one event
    await ask(carol, "set hall level 0.8")  # still above: nothing
    event = await bob.wait_message(_from_hub)
    assert event["body"].startswith("Hall dimmer: level 0.7")
    await no_reply_pending(bob, hub)
    assert (await ask(bob, "watch hall level soon")).startswith("I don't understand 'soon'.")
    assert (await ask(bob, "watch porch-light state > 3")).startswith("state is not a number")


async def test_a_stranger_cannot_watch(hub: HubdProcess, mallory: TestClient) -> None:
    assert await ask(mallory, "watch porch-light") == "Not authorised."
