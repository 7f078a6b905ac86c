"""XEP-0347 end to end: hubd registers with a Thing registry, is claimed, disowned, across restarts.

The registry is tests/thing_registry.py, a client account (so hubd must
befriend it and address its full JID).  The claimer, mallory, is nobody in
the config: only the registry's word makes her an owner.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from iot_client import CTRL, IqFailure, iq
from thing_registry import NS, ThingRegistry, connect_component
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer
from hubd.testing.prosody_components import ProsodyWithComponents

SET_ON = (
    f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><boolean name='state' value='true'/></set>"
)
DISCOVERY = """
discovery:
  registry: registry@localhost
  meta: {MAN: example.org, MODEL: hubd, SN: A-1, V: 1.2}
"""


@pytest.fixture
async def registry(prosody: ProsodyServer) -> AsyncIterator[ThingRegistry]:
    client = await connect_client(prosody, "registry", ACCOUNTS["registry"], resource="things")
    yield ThingRegistry(client)
    await client.disconnect_and_wait()


def _unclaimed_hub(
    prosody: ProsodyServer, workdir: Path, discovery: str = DISCOVERY
) -> HubdProcess:
    """A hub with a registry and no owner of its own (carol stays a controller, bob a reader)."""
    process = HubdProcess(workdir, prosody, extra_config=discovery)
    text = process.config_file.read_text().replace("owners: [alice@localhost]", "owners: []", 1)
    process.config_file.write_text(text)
    return process


async def _set(client: TestClient, hub: HubdProcess) -> str:
    """``ok`` or the error condition of turning the porch light on."""
    answer = await iq(client, hub.jid, SET_ON, "set")
    return answer.condition if isinstance(answer, IqFailure) else "ok"


def _hubd(*args: str) -> str:
    command = [sys.executable, "-m", "hubd", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


async def test_claimed_then_disowned_across_restarts(
    prosody: ProsodyServer,
    tmp_path: Path,
    registry: ThingRegistry,
    mallory: TestClient,
    carol: TestClient,
    bob: TestClient,
) -> None:
    hub = _unclaimed_hub(prosody, tmp_path / "hubd")
    state = tmp_path / "hubd" / "state" / "registry.json"
    async with hub.running():
        request = await registry.next_request()
        assert request.name == "register"
        assert request.sender == hub.jid  # a client-account registry sees the full JID
        key = json.loads(state.read_text())["key"]
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        assert request.tags() == {
            "MAN": ("str", "example.org"),
            "MODEL": ("str", "hubd"),
            "SN": ("str", "A-1"),
            "V": ("num", "1.2"),
            "KEY": ("str", key),
        }
        assert "selfOwned" not in request.element.attrib
        printed = _hubd("claim", "-c", str(hub.config_file))
        assert f"IoTDisco;MAN:example.org;MODEL:hubd;SN:A-1;#V:1.2;KEY:{key}\n" in printed
        uri = f"iotdisco:MAN=example.org;MODEL=hubd;SN=A-1;#V=1.2;KEY={key};R=registry@localhost"
        assert uri + "\n" in printed
        assert "█" in printed  # the QR code
        # Unclaimed, with no owner configured: it answers the registry only.
        assert await _set(carol, hub) == "forbidden"
        assert await _set(mallory, hub) == "forbidden"

        # Bad input: a claim from someone who is not the registry, a malformed claim.
        forged = await iq(bob, hub.jid, f"<claimed xmlns='{NS}' jid='bob@localhost'/>", "set")
        assert isinstance(forged, IqFailure)
        assert forged.condition == "forbidden"
        malformed = await registry.tell(hub.jid, f"<claimed xmlns='{NS}' jid='localhost'/>")
        assert isinstance(malformed, IqFailure)
        assert malformed.condition == "bad-request"
        assert await _set(bob, hub) == "forbidden"

        # XEP-0347 'Ownership claimed': mallory becomes an owner.
        answer = await registry.tell(hub.jid, f"<claimed xmlns='{NS}' jid='mallory@localhost'/>")
        assert not isinstance(answer, IqFailure), answer
        assert await _set(mallory, hub) == "ok"
        assert await _set(carol, hub) == "ok"  # the lists apply again: carol controls
    assert "claimed by mallory@localhost (public)" in _hubd("check", "-c", str(hub.config_file))

    # A restart keeps the owner; a changed meta tag is sent as an update, KEY never again.
    config = hub.config_file.read_text()
    hub.config_file.write_text(config.replace("V: 1.2", "V: 1.3"))
    hub.mark()
    async with hub.running():
        update = await registry.next_request()
        assert update.name == "update"
        assert update.tags() == {"V": ("num", "1.3")}
        assert await _set(mallory, hub) == "ok"
        # XEP-0347 'Thing disowned in registry by owner'.
        answer = await registry.tell(hub.jid, f"<disowned xmlns='{NS}'/>")
        assert not isinstance(answer, IqFailure), answer
        assert await _set(mallory, hub) == "forbidden"
        again = await registry.next_request()
        assert again.name == "register"
        assert again.tags()["KEY"][1] != key  # the former owner's code is void
    assert "not claimed yet" in _hubd("check", "-c", str(hub.config_file))

    hub.mark()
    async with hub.running():
        assert (await registry.next_request()).name == "register"
        assert await _set(mallory, hub) == "forbidden"


async def test_already_claimed_answer_and_private_claims(
    prosody: ProsodyServer, tmp_path: Path, registry: ThingRegistry, mallory: TestClient
) -> None:
    # XEP-0347 'Registration response when alrady claimed', then a private claim.
    registry.register_answer = f"<claimed xmlns='{NS}' jid='mallory@localhost' public='false'/>"
    hub = _unclaimed_hub(prosody, tmp_path / "hubd")
    async with hub.running():
        assert (await registry.next_request()).name == "register"
        await hub.wait_for_log(r"claimed by mallory@localhost through the thing registry \(priv")
        assert await _set(mallory, hub) == "ok"
    # Private: nothing more to tell the registry, even with changed tags.
    hub.config_file.write_text(hub.config_file.read_text().replace("SN: A-1", "SN: A-2"))
    hub.mark()
    async with hub.running():
        assert await _set(mallory, hub) == "ok"
        removed = await registry.tell(hub.jid, f"<removed xmlns='{NS}'/>")
        assert not isinstance(removed, IqFailure)
        assert await _set(mallory, hub) == "ok"  # removed from searches, still owned
        assert registry.requests.empty()
        # The owner takes the hub out of the registry for good (XEP-0347 'Unregister Thing').
        mallory.send_message(mto=hub.jid, mbody="unregister", mtype="chat")
        assert (await registry.next_request()).name == "unregister"
        reply = await mallory.wait_message(
            lambda m: m["from"] == hub.jid and "nregistered" in m["body"]
        )
        assert reply["body"].startswith("Unregistered")
    disowned_config = hub.config_file.read_text()
    hub.config_file.write_text(disowned_config.replace("SN: A-2", "SN: A-3"))
    hub.mark()
    async with hub.running():
        assert await _set(mallory, hub) == "ok"  # still the owner
    assert registry.requests.empty()  # no register, no update: unregistered


@pytest.mark.parametrize(
    ("where", "logged"),
    [
        ("nothing.localhost", "refused register"),  # no such component: the server says so
        ("auto", "advertises urn:xmpp:iot:discovery"),  # no component offers it
        ("nobody@localhost", "presence subscription"),  # an account that never answers
    ],
)
async def test_without_a_registry_the_hub_still_works(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient, where: str, logged: str
) -> None:
    process = HubdProcess(
        tmp_path / "hubd", prosody, extra_config=f"discovery: {{registry: {where}}}"
    )
    async with process.running():
        await process.wait_for_log(logged)
        assert await _set(alice, process) == "ok"
    assert process.log().count("thing registry:") == 1  # one clear line, not one per retry


@pytest.fixture
def component_server(tmp_path: Path) -> Iterator[ProsodyWithComponents]:
    """A Prosody of this test's own with an external component registry.localhost."""
    server = ProsodyWithComponents(tmp_path / "prosody", ["registry"])
    for user, password in ACCOUNTS.items():
        server.register(user, password)
    with server:
        yield server


async def test_a_component_registry_found_by_auto(
    component_server: ProsodyWithComponents, tmp_path: Path
) -> None:
    component = await connect_component(component_server, "registry.localhost")
    registry = ThingRegistry(component)
    mallory = await connect_client(component_server, "mallory", ACCOUNTS["mallory"])
    hub = _unclaimed_hub(component_server, tmp_path / "hubd", "discovery: {registry: auto}")
    try:
        async with hub.running():
            # XEP-0347 'Determining Support': disco#items of the server, disco#info of each.
            await hub.wait_for_log("thing registry found: registry.localhost")
            request = await registry.next_request()
            assert request.name == "register"
            assert request.sender == hub.jid
            assert set(request.tags()) == {"MODEL", "CLASS", "KEY"}  # the default tags
            assert await _set(mallory, hub) == "forbidden"
            answer = await registry.tell(
                hub.jid, f"<claimed xmlns='{NS}' jid='mallory@localhost'/>"
            )
            assert not isinstance(answer, IqFailure), answer
            assert await _set(mallory, hub) == "ok"
    finally:
        await mallory.disconnect_and_wait()
        component.disconnect()
        await component.wait_until("disconnected", 5)


async def test_a_self_owned_hub_registers_public_and_sends_updates(
    prosody: ProsodyServer, tmp_path: Path, registry: ThingRegistry, alice: TestClient
) -> None:
    discovery = "discovery: {registry: registry@localhost, self_owned: true, meta: {ROOM: hall}}"
    hub = HubdProcess(tmp_path / "hubd", prosody, extra_config=discovery)
    async with hub.running():
        request = await registry.next_request()
        assert request.name == "register"
        assert request.element.get("selfOwned") == "true"  # 'Register self-owned Thing'
        assert request.tags()["ROOM"] == ("str", "hall")
        assert await _set(alice, hub) == "ok"  # the configured owner, as ever
    hub.config_file.write_text(hub.config_file.read_text().replace("ROOM: hall", "ROOM: attic"))
    hub.mark()
    async with hub.running():
        update = await registry.next_request()
        assert update.name == "update"
        assert update.tags() == {"ROOM": ("str", "attic")}
