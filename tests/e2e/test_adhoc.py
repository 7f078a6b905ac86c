"""XEP-0050 ad-hoc commands end to end: a real hubd, a real Prosody, slixmpp's command client.

Every command is single-stage (execute → one form → complete), as Profanity
needs; command lists and access differ per requester.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hubd_process import WITH_DIMMER, HubdProcess
from slixmpp import JID
from slixmpp.exceptions import IqError
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(tmp_path / "hubd", prosody, devices=WITH_DIMMER).running() as process:
        yield process


async def command_list(client: TestClient, hub: HubdProcess) -> list[tuple[str, str]]:
    iq = await client.plugin["xep_0050"].get_commands(jid=JID(hub.jid), timeout=10)
    # slixmpp hands the items over as a set: the order on the wire is lost.
    return sorted((node, name) for _jid, node, name in iq["disco_items"]["items"])


async def execute(client: TestClient, hub: HubdProcess, node: str) -> Any:
    return await client.plugin["xep_0050"].send_command(JID(hub.jid), node, timeout=10)


async def submit(
    client: TestClient, hub: HubdProcess, first: Any, values: dict[str, str], sender: Any = None
) -> Any:
    """Complete the session that ``first`` opened with a submitted form of ``values``."""
    form = client.plugin["xep_0004"].make_form(ftype="submit")
    for var, value in values.items():
        form.add_field(var=var, value=value)
    return (
        await (sender or client)
        .plugin["xep_0050"]
        .send_command(
            JID(hub.jid),
            first["command"]["node"],
            action="complete",
            payload=form,
            sessionid=first["command"]["sessionid"],
            timeout=10,
        )
    )


def form_fields(iq: Any) -> dict[str, dict[str, Any]]:
    """The fields of the data form in a command result, read from the XML itself."""
    form = iq.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_DATA}}}x")
    assert form is not None
    fields: dict[str, dict[str, Any]] = {}
    for field in form.findall(f"{{{NS_DATA}}}field"):
        fields[field.get("var", "")] = {
            "type": field.get("type"),
            "label": field.get("label"),
            "required": field.find(f"{{{NS_DATA}}}required") is not None,
            "value": field.findtext(f"{{{NS_DATA}}}value"),
            "options": [
                (o.findtext(f"{{{NS_DATA}}}value"), o.get("label"))
                for o in field.findall(f"{{{NS_DATA}}}option")
            ],
        }
    return fields


async def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(IqError) as caught:
        await call
    error = caught.value.iq["error"]
    return error["type"], error["condition"]


async def test_command_lists_are_per_sender(
    hub: HubdProcess, alice: TestClient, bob: TestClient, mallory: TestClient
) -> None:
    assert await command_list(alice, hub) == [
        ("plot", "Plot a device"),
        ("read", "Read a device"),
        ("set", "Set a device"),
        ("status", "Hub status"),
        ("watch", "Watch a device"),
    ]
    assert await command_list(bob, hub) == [
        ("plot", "Plot a device"),
        ("read", "Read a device"),
        ("status", "Hub status"),
        ("watch", "Watch a device"),
    ]
    assert await command_list(mallory, hub) == []
    info = await alice.plugin["xep_0030"].get_info(jid=JID(hub.jid), node="set", timeout=10)
    assert ("automation", "command-node", None, "Set a device") in info["disco_info"]["identities"]
    assert {NS_COMMANDS, "jabber:x:data"} <= set(info["disco_info"]["features"])
    assert await error_of(
        bob.plugin["xep_0030"].get_info(jid=JID(hub.jid), node="set", timeout=10)
    ) == ("cancel", "forbidden")


async def test_read_a_device_single_stage(hub: HubdProcess, alice: TestClient) -> None:
    first = await execute(alice, hub, "read")
    command = first["command"]
    assert command["status"] == "executing"
    assert set(command["actions"]) == {"complete"}  # single stage: Profanity can run it
    field = form_fields(first)["device"]
    assert field["type"] == "list-single"
    assert field["required"]
    assert field["options"] == [
        ("porch-light", "porch-light (Porch light)"),
        ("front-door", "front-door"),
        ("dimmer", "dimmer (Hall dimmer)"),
    ]
    done = await submit(alice, hub, first, {"device": "porch-light"})
    assert done["command"]["status"] == "completed"
    assert done["command"]["notes"] == [("info", "Porch light: state off (just now)")]
    assert done.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_DATA}}}x") is None  # the note says it


async def test_set_a_device_then_read_it(hub: HubdProcess, alice: TestClient) -> None:
    first = await execute(alice, hub, "set")
    assert set(first["command"]["actions"]) == {"complete"}
    fields = form_fields(first)
    assert fields["target"]["options"] == [
        ("porch-light.state", "Porch light: state, now off"),
        ("dimmer.level", "Hall dimmer: level, now 0.000"),
    ]
    assert fields["value"]["type"] == "text-single"
    done = await submit(alice, hub, first, {"target": "porch-light.state", "value": "ON"})
    assert done["command"]["status"] == "completed"
    assert done["command"]["notes"] == [("info", "Porch light: state on")]
    await hub.wait_for_log(r"control by alice@localhost/test: porch-light\.state = True done")
    again = await submit(alice, hub, await execute(alice, hub, "read"), {"device": "porch-light"})
    assert again["command"]["notes"] == [("info", "Porch light: state on (just now)")]


async def test_a_failed_set_completes_with_an_error_note(
    hub: HubdProcess, alice: TestClient
) -> None:
    first = await execute(alice, hub, "set")
    done = await submit(alice, hub, first, {"target": "dimmer.level", "value": "7"})
    assert done["command"]["status"] == "completed"
    assert done["command"]["notes"] == [
        ("error", "Cannot set dimmer level to '7': 7 is above the maximum 1. "
         "Try: set dimmer level 0.5"),
    ]  # fmt: skip
    empty = await submit(alice, hub, await execute(alice, hub, "set"), {"target": "dimmer.level"})
    assert empty["command"]["notes"] == [("error", "Type a value, e.g. 0.5.")]


async def test_hub_status(hub: HubdProcess, bob: TestClient) -> None:
    done = await execute(bob, hub, "status")
    command = done["command"]
    assert command["status"] == "completed"
    [(kind, text)] = command["notes"]
    assert kind == "info"
    assert text.splitlines()[0] == "3 devices:"
    assert "- porch-light (Porch light): state off" in text.splitlines()


async def test_reader_may_not_set(hub: HubdProcess, bob: TestClient) -> None:
    assert await error_of(execute(bob, hub, "set")) == ("cancel", "forbidden")
    assert "control by bob" not in hub.log()


async def test_stranger_may_run_nothing(hub: HubdProcess, mallory: TestClient) -> None:
    for node in ("read", "set", "status", "no-such-command"):
        assert await error_of(execute(mallory, hub, node)) == ("cancel", "forbidden")


async def test_sessions_belong_to_whoever_started_them(
    hub: HubdProcess, alice: TestClient, prosody: ProsodyServer
) -> None:
    first = await execute(alice, hub, "set")
    carol = await connect_client(prosody, "carol", "carolpass")
    try:
        # Carol may set, but not by finishing Alice's session (its audit would say Alice).
        hijack = submit(alice, hub, first, {"target": "porch-light.state", "value": "on"}, carol)
        assert await error_of(hijack) == ("modify", "bad-request")
    finally:
        await carol.disconnect_and_wait()
    stale = await execute(alice, hub, "read")
    stale["command"]["sessionid"] = "no-such-session"
    assert await error_of(submit(alice, hub, stale, {"device": "porch-light"})) == (
        "modify",
        "bad-request",
    )
    assert await error_of(execute(alice, hub, "no-such-command")) == ("cancel", "item-not-found")
    assert "porch-light.state = True" not in hub.log()


async def test_watch_a_device_then_its_events_arrive_as_chat(
    hub: HubdProcess, bob: TestClient, alice: TestClient
) -> None:
    first = await execute(bob, hub, "watch")
    assert set(first["command"]["actions"]) == {"complete"}
    assert form_fields(first)["condition"]["type"] == "text-single"
    done = await submit(bob, hub, first, {"device": "dimmer", "condition": "level > 0.5"})
    assert done["command"]["notes"] == [
        ("info", "Watching Hall dimmer (level > 0.5). Type unwatch dimmer to stop.")
    ]
    await submit(
        alice, hub, await execute(alice, hub, "set"), {"target": "dimmer.level", "value": "0.9"}
    )
    event = await bob.wait_message(lambda m: m["type"] == "chat" and bool(m["body"]))
    assert event["body"].startswith("Hall dimmer: level 0.9")
