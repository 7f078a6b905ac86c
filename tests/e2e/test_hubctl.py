"""hubctl end to end: the real ``hubctl`` executable, a real hubd process, the test Prosody.

Every command in human and JSON form, every exit status, a watch of three
events, and the refusals.  The hub's devices are hubd_process.WITH_DIMMER
(porch-light, front-door, dimmer); what hubctl did is checked through an
independent raw-stanza client (tests/iot_client.py) or hubd's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from accounts import ACCOUNTS
from defusedxml.ElementTree import fromstring
from hubd_process import WITH_DIMMER, HubdProcess
from iot_client import CTRL, SD, field_values, iq, readout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer, find_free_port

HUBCTL = str(Path(sys.executable).with_name("hubctl"))
KEYS = ["device", "field", "value", "type", "unit", "time"]
HUB = "hub@localhost"  # bare: hubctl adds hubd's resource, /hubd


@dataclass
class Run:
    status: int
    out: str
    err: str

    def lines(self) -> list[str]:
        return self.out.splitlines()

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]


class Hubctl:
    """Runs ``hubctl`` as ``user`` (the environment's account), in a HOME of its own."""

    def __init__(self, server: ProsodyServer, home: Path, user: str = "alice") -> None:
        self.server = server
        self.home = home
        self.env = {
            **os.environ,
            "HOME": str(home),
            "HUBCTL_JID": server.jid(user),
            "HUBCTL_PASSWORD": ACCOUNTS[user],
            "HUBCTL_SERVER": server.host,
            "HUBCTL_PORT": str(server.port),
            "HUBCTL_CA_FILE": str(server.ca_file),
        }

    def as_(self, user: str, **env: str) -> Hubctl:
        other = Hubctl(self.server, self.home, user)
        other.env.update(env)
        return other

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            HUBCTL,
            *args,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def __call__(self, *args: str, timeout: float = 30) -> Run:  # noqa: ASYNC109
        proc = await self.start(*args)
        try:
            async with asyncio.timeout(timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"hubctl {' '.join(args)} did not end in {timeout} s") from None
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(tmp_path / "hubd", prosody, devices=WITH_DIMMER).running() as process:
        yield process


@pytest.fixture
def hubctl(prosody: ProsodyServer, tmp_path: Path) -> Hubctl:
    home = tmp_path / "home"
    home.mkdir()
    return Hubctl(prosody, home)


def assert_json_values(run: Run) -> list[dict[str, Any]]:
    assert run.status == 0, run
    objects = run.objects()
    assert objects, run
    for obj in objects:
        assert list(obj) == KEYS
        assert obj["time"].endswith("Z")
    return objects


async def state_of(client: TestClient, node: str) -> str:
    _, payloads = await readout(
        client, f"{HUB}/hubd", f"<req xmlns='{SD}' seqnr='77'><node nodeId='{node}'/></req>"
    )
    values: dict[str, str] = {}
    for element in payloads:
        values.update(field_values(element).get(node, {}))
    return values["state" if node != "dimmer" else "level"]


# --- every command, human and JSON ----------------------------------------------------


async def test_list(hub: HubdProcess, hubctl: Hubctl) -> None:
    human = await hubctl("list", HUB)
    assert human.status == 0, human
    assert human.lines()[0].startswith("porch-light (Porch light)  state")
    assert any(line.startswith("dimmer (Hall dimmer)") for line in human.lines())
    assert "front-door" in human.out
    objects = assert_json_values(await hubctl("--json", "list", HUB))
    states = {(o["device"], o["field"]): o for o in objects}
    assert states["porch-light", "state"]["value"] is False
    assert states["dimmer", "level"]["type"] == "numeric"


async def test_read(hub: HubdProcess, hubctl: Hubctl) -> None:
    everything = await hubctl("read", HUB)
    assert everything.status == 0, everything
    assert {line.split()[0] for line in everything.lines()} == {
        "porch-light",
        "front-door",
        "dimmer",
    }
    one = await hubctl("read", HUB, "porch-light", "state")
    assert one.status == 0, one
    assert one.lines() == ["porch-light  state  off  just now"]
    [level] = assert_json_values(await hubctl("read", HUB, "dimmer", "level", "--json"))
    assert (level["device"], level["field"], level["type"]) == ("dimmer", "level", "numeric")
    assert level["value"] == 0
    assert isinstance(level["value"], int | float)


async def test_set_and_read_back(hub: HubdProcess, hubctl: Hubctl, alice: TestClient) -> None:
    human = await hubctl("set", HUB, "porch-light", "state", "on")
    assert (human.status, human.lines()) == (0, ["porch-light  state  on"]), human
    assert await state_of(alice, "porch-light") == "true"
    await hub.wait_for_log(r"control by alice@localhost/hubctl-[0-9a-f]+: porch-light.state = True")
    [set_] = assert_json_values(await hubctl("--json", "set", HUB, "dimmer", "level", "0.25"))
    assert (set_["device"], set_["field"], set_["value"], set_["type"]) == (
        "dimmer",
        "level",
        0.25,
        "numeric",
    )
    assert await state_of(alice, "dimmer") == "0.250"


async def test_history(hub: HubdProcess, hubctl: Hubctl) -> None:
    assert (await hubctl("set", HUB, "porch-light", "state", "on")).status == 0
    human = await hubctl("history", HUB, "porch-light", "state", "--since", "1h")
    assert human.status == 0, human
    assert [line.split()[-1] for line in human.lines()][-2:] == ["off", "on"]
    objects = assert_json_values(await hubctl("--json", "history", HUB, "porch-light", "state"))
    assert [o["value"] for o in objects][-2:] == [False, True]
    assert {o["field"] for o in objects} == {"state"}


async def test_browse(hub: HubdProcess, hubctl: Hubctl) -> None:
    human = await hubctl("browse", HUB)
    assert human.status == 0, human
    assert human.lines()[0] == "MeteringTopology  (All devices)"
    assert "  gpio  (gpio devices)" in human.lines()
    assert any(
        "porch-light  Porch light  gpio.output  readable, controllable" in line
        for line in human.lines()
    )
    json_run = await hubctl("--json", "browse", HUB)
    assert json_run.status == 0, json_run
    nodes = {(o["source"], o["device"]): o for o in json_run.objects()}
    assert set(nodes) == {
        (source, device)
        for source in ("MeteringTopology", "gpio")
        for device in ("porch-light", "front-door", "dimmer")
    }
    assert nodes["gpio", "front-door"]["controllable"] is False


async def watch_three(
    hub: HubdProcess, hubctl: Hubctl, alice: TestClient, values: list[str], *options: str
) -> list[str]:
    """Watch porch-light's state for 3 events while ``values`` are set (each a change)."""
    hub.mark()
    proc = await hubctl.start("watch", HUB, "porch-light", "state", "--count", "3", *options)
    assert proc.stdout is not None
    try:
        await hub.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ subscribed to porch-light")
        lines = []
        for value in values:
            answer = await iq(
                alice,
                hub.jid,
                f"<set xmlns='{CTRL}'><node nodeId='porch-light'/>"
                f"<boolean name='state' value='{value}'/></set>",
                "set",
            )
            assert not hasattr(answer, "condition"), answer
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            lines.append(line.decode().rstrip("\n"))
        status = await asyncio.wait_for(proc.wait(), 15)
        assert status == 0
        assert await proc.stdout.read() == b""  # three events, then it stopped by itself
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return lines


async def test_watch_three_events(hub: HubdProcess, hubctl: Hubctl, alice: TestClient) -> None:
    lines = await watch_three(hub, hubctl, alice, ["true", "false", "true"])
    assert [line.split("  ", 1)[1] for line in lines] == [
        "porch-light  state on",
        "porch-light  state off",
        "porch-light  state on",
    ]
    lines = await watch_three(hub, hubctl, alice, ["false", "true", "false"], "--json")
    objects = [json.loads(line) for line in lines]
    assert [(o["device"], o["field"], o["value"]) for o in objects] == [
        ("porch-light", "state", False),
        ("porch-light", "state", True),
        ("porch-light", "state", False),
    ]


async def test_watch_for_a_time_ends_and_unsubscribes(hub: HubdProcess, hubctl: Hubctl) -> None:
    hub.mark()
    run = await hubctl("watch", HUB, "front-door", "--for", "0.5")
    assert (run.status, run.out, run.err) == (0, "", ""), run
    await hub.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ unsubscribed from front-door")


async def test_watch_ends_on_sigterm_and_unsubscribes(hub: HubdProcess, hubctl: Hubctl) -> None:
    hub.mark()
    proc = await hubctl.start("--json", "watch", HUB, "porch-light")
    await hub.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ subscribed to porch-light")
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 15) == 0
    await hub.wait_for_log(r"alice@localhost/hubctl-[0-9a-f]+ unsubscribed from porch-light")


async def test_the_account_from_the_config_file(
    hub: HubdProcess, hubctl: Hubctl, prosody: ProsodyServer
) -> None:
    config = hubctl.home / ".config" / "hubctl" / "config.yaml"
    config.parent.mkdir(parents=True)
    (config.parent / "password").write_text("bobpass\n")
    config.write_text(
        f"jid: {prosody.jid('bob')}\npassword_file: password\nserver: {prosody.host}\n"
        f"port: {prosody.port}\nca_file: {prosody.ca_file}\n"
    )
    env = {k: v for k, v in hubctl.env.items() if not k.startswith("HUBCTL_")}
    hubctl.env = env
    run = await hubctl("read", HUB, "front-door", "state")
    assert (run.status, run.lines()) == (0, ["front-door  state  off  just now"]), run


# --- exit statuses ------------------------------------------------------------------------


async def test_usage_errors_are_status_2(hubctl: Hubctl) -> None:
    for args in (
        [],
        ["frobnicate", HUB],
        ["read"],
        ["--timeout", "soon", "read", HUB],
        ["history", HUB, "porch-light", "--since", "5x"],
        ["--password", "hunter2", "read", HUB],
    ):
        run = await hubctl(*args)
        assert run.status == 2, (args, run)
        assert run.err.startswith("hubctl: "), run
        assert "hunter2" not in run.err
        assert run.out == ""
    nobody = Hubctl(hubctl.server, hubctl.home)
    nobody.env = {k: v for k, v in nobody.env.items() if k != "HUBCTL_JID"}
    run = await nobody("read", HUB)
    assert run.status == 2
    assert "no account" in run.err


async def test_help_is_status_0(hubctl: Hubctl) -> None:
    run = await hubctl("watch", "--help")
    assert run.status == 0
    assert "--count N" in run.out
    assert "exit status:" in run.out


async def test_a_wrong_password_is_status_3(hub: HubdProcess, hubctl: Hubctl) -> None:
    run = await hubctl.as_("alice", HUBCTL_PASSWORD="wrong")("read", HUB)
    assert run.status == 3, run
    assert "refused the login of alice@localhost" in run.err
    assert "wrong" not in run.err.replace("wrong password", "")


async def test_no_server_and_an_untrusted_server_are_status_3(hubctl: Hubctl) -> None:
    closed = await hubctl.as_("alice", HUBCTL_PORT=str(find_free_port()))("read", HUB)
    assert closed.status == 3, closed
    assert "cannot connect" in closed.err
    # Without the test CA the server's certificate is not trusted: no login.
    env = {k: v for k, v in hubctl.env.items() if k != "HUBCTL_CA_FILE"}
    untrusted = Hubctl(hubctl.server, hubctl.home)
    untrusted.env = env
    run = await untrusted("read", HUB)
    assert run.status == 3, run
    assert "is not trusted (give its CA with --ca-file" in run.err


async def test_refusals_are_status_1_with_the_hubs_reason(hub: HubdProcess, hubctl: Hubctl) -> None:
    stranger = await hubctl.as_("mallory")("read", HUB, "porch-light")
    assert stranger.status == 1, stranger
    assert "forbidden: Access denied." in stranger.err
    reader = await hubctl.as_("bob")("set", HUB, "porch-light", "state", "on")
    assert reader.status == 1, reader
    assert "forbidden" in reader.err
    assert reader.out == ""
    missing = await hubctl("read", HUB, "attic")
    assert missing.status == 1, missing
    assert "item-not-found: no such node: attic" in missing.err
    not_watched = await hubctl("watch", HUB, "attic")
    assert not_watched.status == 1, not_watched
    assert "item-not-found" in not_watched.err
    no_field = await hubctl("read", HUB, "porch-light", "colour")
    assert no_field.status == 1, no_field
    assert "porch-light has no field 'colour'" in no_field.err
    bad_value = await hubctl("set", HUB, "dimmer", "level", "2")
    assert bad_value.status == 1, bad_value
    assert "bad-request: level: 2 is above the maximum 1" in bad_value.err
    not_a_bool = await hubctl("set", HUB, "porch-light", "state", "maybe")
    assert not_a_bool.status == 1, not_a_bool
    assert "bad-request" in not_a_bool.err
    read_only = await hubctl("set", HUB, "front-door", "state", "on")
    assert read_only.status == 1, read_only
    assert "feature-not-implemented" in read_only.err


@pytest.fixture
async def silent(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """An account online that never answers an IQ (not even with an error)."""
    client = await connect_client(prosody, "garage-hub", ACCOUNTS["garage-hub"], resource="silent")
    client.register_handler(
        Callback("swallow every iq", MatchXPath("{jabber:client}iq"), lambda _iq: None)
    )
    yield client
    await client.disconnect_and_wait()


async def test_no_answer_is_status_1(hubctl: Hubctl, silent: TestClient) -> None:
    run = await hubctl("--timeout", "1", "read", "garage-hub@localhost/silent")
    assert run.status == 1, run
    assert "no answer from garage-hub@localhost/silent within 1 s" in run.err
    list_run = await hubctl("list", "garage-hub@localhost/silent", "--timeout", "0.5")
    assert list_run.status == 1, list_run
    assert "no answer" in list_run.err


async def test_a_hub_that_is_not_online_is_status_1(hubctl: Hubctl) -> None:
    run = await hubctl("read", "carol@localhost/nowhere")
    assert run.status == 1, run
    assert "not online" in run.err


@pytest.fixture
async def thing(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """Another make of device: answers a readout the XEP's other legal way.

    The values come first, without ``done``; a standalone ``<done/>`` ends the
    readout; the IQ result comes last and carries no ``<accepted/>``.  It is
    no concentrator: XEP-0326 requests get slixmpp's feature-not-implemented.
    """
    client = await connect_client(prosody, "garage-hub", ACCOUNTS["garage-hub"], resource="thing")

    def on_req(request: Any) -> None:
        seqnr = request.xml[0].get("seqnr")
        for body in (
            f"<fields xmlns='{SD}' seqnr='{seqnr}'><node nodeId='Device01'>"
            "<timestamp value='2013-03-07T16:24:30Z'>"
            "<numeric name='Temperature' momentary='true' value='23.40' unit='°C'/>"
            "</timestamp></node></fields>",
            f"<done xmlns='{SD}' seqnr='{seqnr}'/>",
        ):
            message = client.make_message(mto=request["from"])
            message.xml.append(fromstring(body))
            message.send()
        request.reply(clear=True).send()

    client.register_handler(
        Callback("readout", MatchXPath(f"{{jabber:client}}iq/{{{SD}}}req"), on_req)
    )
    yield client
    await client.disconnect_and_wait()


async def test_another_concentrators_readout(hubctl: Hubctl, thing: TestClient) -> None:
    [value] = assert_json_values(
        await hubctl("--json", "read", "garage-hub@localhost/thing", "Device01", "Temperature")
    )
    assert value == {
        "device": "Device01",
        "field": "Temperature",
        "value": 23.40,
        "type": "numeric",
        "unit": "°C",
        "time": "2013-03-07T16:24:30Z",
    }
    # Not a concentrator: list does without the tree, from the readout alone.
    listed = await hubctl("list", "garage-hub@localhost/thing")
    assert listed.status == 0, listed
    assert listed.lines()[0].startswith("Device01  Temperature  23.40 °C  ")
