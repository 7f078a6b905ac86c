"""hubctl on a remote hub's devices: the real ``hubctl``, a front hub and a garage hub.

The hubs are those of tests/e2e/test_remotes.py (its fixtures, reused): the
house hub (``hub@localhost``: porch-light, front-door; alice owns it, carol
controls, bob reads) lists the garage hub (door, light) as ``remotes: [{id:
garage}]``; the garage names the house hub as a reader (``garage_role``) and
alice as its owner.  hubctl addresses the garage's devices as ``garage/door``
through the house hub; what it did is checked at the garage itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from hubd_process import HubdProcess
from iot_client import CTRL, iq
from remote_hubs import remotes_yaml
from test_hubctl import KEYS, Hubctl, hubctl
from test_remotes import garage, garage_light, garage_role, house, remote_access, silent_shed
from xmpp_client import TestClient

from hubd.testing.prosody import ProsodyServer

HUB = "hub@localhost"  # the house hub, bare: hubctl adds /hubd

# The fixtures used here, imported from the modules that define them.
__all__ = ["garage", "garage_role", "house", "hubctl", "remote_access", "silent_shed"]


async def set_at_the_garage(alice: TestClient, garage: HubdProcess, value: str) -> None:
    """Alice (the garage's owner) sets the garage light at the garage hub itself."""
    answer = await iq(
        alice,
        garage.jid,
        f"<set xmlns='{CTRL}'><node nodeId='light'/><boolean name='state' value='{value}'/></set>",
        "set",
    )
    assert not hasattr(answer, "condition"), answer


async def test_list_shows_the_remotes_devices_under_its_id(
    house: HubdProcess, hubctl: Hubctl
) -> None:
    human = await hubctl("list", HUB)
    assert human.status == 0, human
    lines = human.lines()
    assert lines[0].startswith("porch-light (Porch light)  state")
    garage_at = lines.index("garage  (garage hub)")  # after the hub's own devices
    assert any(line.startswith("front-door") for line in lines[:garage_at])
    assert lines[garage_at + 1 :] == [
        "  garage/door (Garage door)    state  off  just now",
        "  garage/light (Garage light)  state  off  just now",
    ]

    machine = await hubctl("--json", "list", HUB)
    assert machine.status == 0, machine
    objects = machine.objects()
    assert all(list(o) == KEYS for o in objects)
    states = {o["device"]: o["value"] for o in objects if o["field"] == "state"}
    assert states == {
        "porch-light": False,
        "front-door": False,
        "garage/door": False,
        "garage/light": False,
    }


async def test_read_a_remote_device_and_everything(house: HubdProcess, hubctl: Hubctl) -> None:
    one = await hubctl("read", HUB, "garage/door", "state")
    assert (one.status, one.lines(), one.err) == (0, ["garage/door  state  off  just now"], "")
    [door] = (await hubctl("--json", "read", HUB, "garage/door", "state")).objects()
    assert (door["device"], door["field"], door["value"], door["type"]) == (
        "garage/door",
        "state",
        False,
        "boolean",
    )
    everything = await hubctl("read", HUB)
    assert everything.status == 0, everything
    assert {line.split()[0] for line in everything.lines()} == {
        "porch-light",
        "front-door",
        "garage/door",
        "garage/light",
    }
    # The hub's own devices are named as before.
    local = await hubctl("read", HUB, "porch-light", "state")
    assert (local.status, local.lines()) == (0, ["porch-light  state  off  just now"]), local


async def test_unknown_remote_devices_and_bad_names(house: HubdProcess, hubctl: Hubctl) -> None:
    for device in ("garage/attic", "shed/door"):
        missing = await hubctl("read", HUB, device)
        assert missing.status == 1, (device, missing)
        assert missing.err.startswith("hubctl: the hub refused: item-not-found"), missing
        assert missing.out == ""
    missing_field = await hubctl("read", HUB, "garage/door", "colour")
    assert missing_field.status == 1, missing_field
    assert "garage/door has no field 'colour'" in missing_field.err
    for bad in ("garage/", "/door", "garage/shed/door"):
        run = await hubctl("read", HUB, bad)
        assert run.status == 2, (bad, run)
        assert run.err.startswith("hubctl: not a device name"), run


@pytest.mark.parametrize("garage_role", ["controllers"])
async def test_set_a_remote_device_done_at_the_garage(
    house: HubdProcess, garage: HubdProcess, hubctl: Hubctl, alice: TestClient
) -> None:
    carol = hubctl.as_("carol")  # a controller of the house hub
    human = await carol("set", HUB, "garage/light", "state", "on")
    assert (human.status, human.lines(), human.err) == (0, ["garage/light  state  on"], ""), human
    assert await garage_light(alice, garage) == "true"
    await garage.wait_for_log(r"control by hub@\S+: light\.state = True done")
    [set_] = (await carol("--json", "set", HUB, "garage/light", "state", "off")).objects()
    assert (set_["device"], set_["value"]) == ("garage/light", False)
    assert await garage_light(alice, garage) == "false"


async def test_the_garages_forbidden_is_status_1(
    house: HubdProcess, garage: HubdProcess, hubctl: Hubctl, alice: TestClient
) -> None:
    # The garage lists the house hub as a reader only: carol controls here, not there.
    refused = await hubctl.as_("carol")("set", HUB, "garage/light", "state", "on")
    assert refused.status == 1, refused
    assert refused.err.startswith("hubctl: the hub refused: forbidden"), refused
    assert "garage: " in refused.err
    assert refused.out == ""
    assert await garage_light(alice, garage) == "false"
    # A reader of the house may not even ask.
    reader = await hubctl.as_("bob")("set", HUB, "garage/light", "state", "on")
    assert reader.status == 1, reader
    assert await garage_light(alice, garage) == "false"


async def test_watch_a_remote_device(
    house: HubdProcess, garage: HubdProcess, hubctl: Hubctl, alice: TestClient
) -> None:
    house.mark()
    proc = await hubctl.start("--json", "watch", HUB, "garage/light", "state", "--count", "1")
    assert proc.stdout is not None
    try:
        await house.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ subscribed to garage/light")
        await set_at_the_garage(alice, garage, "true")
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    event = json.loads(line)
    assert (event["device"], event["field"], event["value"]) == ("garage/light", "state", True)
    await house.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ unsubscribed from garage/light")


async def test_history_of_a_remote_device_is_the_garages(
    house: HubdProcess, garage: HubdProcess, hubctl: Hubctl, alice: TestClient
) -> None:
    await set_at_the_garage(alice, garage, "true")
    human = await hubctl("history", HUB, "garage/light", "state", "--since", "1h")
    assert human.status == 0, human
    assert [line.split()[-3:] for line in human.lines()][-2:] == [
        ["garage/light", "state", "off"],
        ["garage/light", "state", "on"],
    ]
    objects = (await hubctl("--json", "history", HUB, "garage/light", "state")).objects()
    assert [(o["device"], o["value"]) for o in objects][-2:] == [
        ("garage/light", False),
        ("garage/light", True),
    ]


async def test_an_offline_remote_is_status_1_with_the_reason(
    house: HubdProcess, garage: HubdProcess, hubctl: Hubctl
) -> None:
    house.mark()
    await garage.stop()
    await house.wait_for_log(r"remote garage \S+ offline: the remote hub went offline")
    reason = "garage: the remote hub went offline"

    one = await hubctl("read", HUB, "garage/door")
    assert (one.status, one.out) == (1, ""), one
    assert one.err == f"hubctl: garage/door: {reason}\n"

    everything = await hubctl("read", HUB)
    assert everything.status == 1, everything
    assert {line.split()[0] for line in everything.lines()} == {"porch-light", "front-door"}
    assert f"hubctl: garage/light: {reason}" in everything.err.splitlines()

    listed = await hubctl("list", HUB)
    assert listed.status == 1, listed
    assert any(
        line.startswith("  garage/door (Garage door)") and line.endswith(f"(failed: {reason})")
        for line in listed.lines()
    ), listed

    # Accepted: the house keeps the subscription, and its events come when the garage is back.
    watched = await hubctl("watch", HUB, "garage/door", "--for", "0.5")
    assert (watched.status, watched.out, watched.err) == (0, "", ""), watched

    refused = await hubctl.as_("carol")("set", HUB, "garage/light", "state", "on")
    assert refused.status == 1, refused
    assert refused.err.startswith("hubctl: "), refused


async def test_a_silent_remote_is_status_1_within_its_timeout(
    prosody: ProsodyServer, tmp_path: Path, silent_shed: TestClient, hubctl: Hubctl
) -> None:
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        extra_config=remotes_yaml("shed", str(silent_shed.boundjid), timeout=2),
    )
    async with front.running(r"remote shed \S+ online: 1 node\(s\)"):
        run = await hubctl("read", HUB, "shed/heater")
    assert (run.status, run.out) == (1, ""), run
    assert run.err == "hubctl: shed/heater: shed: no answer within 2 s\n"


async def test_browse_shows_the_remote_as_a_data_source(house: HubdProcess, hubctl: Hubctl) -> None:
    human = await hubctl("browse", HUB)
    assert human.status == 0, human
    lines = human.lines()
    at = lines.index("  garage  (garage hub)")  # a child of MeteringTopology
    assert lines[at + 1].startswith("    door   Garage door   gpio.input   readable")
    nodes = {(o["source"], o["device"]) for o in (await hubctl("--json", "browse", HUB)).objects()}
    assert {("garage", "door"), ("garage", "light")} <= nodes
