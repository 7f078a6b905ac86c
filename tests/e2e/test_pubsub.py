"""``pubsub:``: the hub publishes its devices through the server (PEP and a service).

A real Prosody (``pep`` and a ``pubsub`` component) and a real ejabberd
(``mod_pubsub``), hubd as a process, readers as plain slixmpp clients:
a subscriber gets the change as an event, a late reader's items request
returns every device, the items outlive a restart of hubd, a stranger is
refused, and a reload that removes a reader takes its access away.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from accounts import ACCOUNTS
from hubd_process import WITH_DIMMER, HubdProcess
from pubsub_client import (
    OWNER,
    Refused,
    fields_of,
    items,
    request,
    subscribe,
    wait_event,
    wait_items,
)
from xmpp_client import TestClient, connect_client

from hubd.testing.ejabberd import EjabberdServer
from hubd.testing.prosody import ProsodyServer

NODE = "urn:xmpp:iot:sensordata"
DEVICES = {"porch-light", "front-door", "dimmer"}
READY = r"pubsub: publishing 3 device\(s\)"

Server = ProsodyServer | EjabberdServer


@pytest.fixture(scope="module", params=["prosody", "ejabberd"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Prosody with pep and pubsub.localhost; ejabberd with mod_pubsub (flat, pep)."""
    workdir = tmp_path_factory.mktemp(request.param)
    made: Server
    if request.param == "prosody":
        made = ProsodyServer(workdir, pubsub=True)
    else:
        made = EjabberdServer(workdir)
    for user, password in ACCOUNTS.items():
        made.register(user, password)
    with made:
        yield made


@pytest.fixture(params=["pep", "service"])
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _target(server: Server, service: str) -> str:
    assert server.pubsub_domain is not None
    return server.jid("hub") if service == "pep" else server.pubsub_domain


def _hub(
    server: Server, workdir: Path, service: str, readers: str = "", node: str = NODE
) -> HubdProcess:
    process = HubdProcess(
        workdir,
        server,  # type: ignore[arg-type]
        devices=WITH_DIMMER,
        extra_config=(
            f"pubsub:\n  service: {'pep' if service == 'pep' else server.pubsub_domain}\n"
            f"  node: {node}\n" + ("  profiles: [iot, uwpx]\n" if service == "pep" else "")
            # UWPX looks at the device's own account only: its profile goes with PEP.
        ),
    )
    if readers:
        text = process.config_file.read_text()
        process.config_file.write_text(text.replace(f"readers: [{server.jid('bob')}]", readers))
    return process


async def _client(server: Server, user: str) -> TestClient:
    client = await connect_client(server, user, ACCOUNTS[user])  # type: ignore[arg-type]
    # Prosody passes subscription answers only to resources that fetched the roster.
    await client.get_roster(timeout=10)
    return client


async def _see_hub(server: Server, client: TestClient, service: str) -> None:
    """PEP's access model is presence: the reader asks to see the hub online (the lists allow)."""
    hub = server.jid("hub")
    if service != "pep" or client.client_roster[hub]["subscription"] in ("to", "both"):
        return
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_presence(presence: Any) -> None:
        kind = presence["type"]
        ours = presence["from"].bare == hub and kind in ("subscribed", "unsubscribed")
        if ours and not answered.done():
            answered.set_result(kind)

    client.add_event_handler("presence", on_presence)
    client.send_presence(pto=hub, ptype="subscribe")
    assert await asyncio.wait_for(answered, 10) == "subscribed"
    client.del_event_handler("presence", on_presence)


@pytest.fixture
async def readers(server: Server, service: str) -> AsyncIterator[dict[str, TestClient]]:
    clients = {user: await _client(server, user) for user in ("alice", "bob", "mallory")}
    yield clients
    for client in clients.values():
        await client.disconnect_and_wait()


def _state_is(value: str) -> Callable[[Element], bool]:
    return lambda payload: fields_of(payload).get("state", {}).get("value") == value


async def _set(client: TestClient, hub_jid: str, text: str) -> None:
    client.send_message(mto=hub_jid, mbody=text, mtype="chat")
    await client.wait_message(lambda m: m["from"].bare == hub_jid and bool(m["body"]))


async def test_subscriber_late_reader_restart_and_stranger(
    server: Server, service: str, readers: dict[str, TestClient], tmp_path: Path
) -> None:
    target = _target(server, service)
    hub = _hub(server, tmp_path / "hubd", service)
    async with hub.running(READY):
        bob = readers["bob"]
        await _see_hub(server, bob, service)
        await wait_items(bob, target, NODE, DEVICES)
        await subscribe(bob, target, NODE)
        await _set(readers["alice"], server.jid("hub"), "set porch-light state on")
        await wait_event(bob, NODE, "porch-light", _state_is("true"))

        # A late reader: every device's current values, as a readout carries them.
        late = await _client(server, "carol")
        try:
            await _see_hub(server, late, service)
            found = await items(late, target, NODE)
        finally:
            await late.disconnect_and_wait()
        assert set(found) == DEVICES
        porch = fields_of(found["porch-light"])
        expected = {"type": "boolean", "value": "true", "writable": "true", "momentary": "true"}
        assert expected.items() <= porch["state"].items()
        assert porch["online"]["status"] == "true"
        assert fields_of(found["dimmer"])["level"]["unit"] == ""

        # A stranger gets neither the items nor a subscription.
        mallory = readers["mallory"]
        with pytest.raises(Refused):
            await items(mallory, target, NODE)
        with pytest.raises(Refused):
            await subscribe(mallory, target, NODE)
        # Items others publish are refused by the server (publish_model=publishers).
        with pytest.raises(Refused):
            await request(
                bob,
                target,
                f"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{NODE}'>"
                "<item id='porch-light'><fields xmlns='urn:xmpp:iot:sensordata'/></item>"
                "</publish></pubsub>",
                "set",
            )
        # Items others push at the hub are data, never commands (control stays on XEP-0325).
        await _forge_events(bob, server.jid("hub"))
        reply = await _ask(bob, server.jid("hub"), "read porch-light")
        assert "state on" in reply, reply
        before = {device: set(fields_of(payload)) for device, payload in found.items()}
        if service == "pep":
            await _check_uwpx(bob, target)

    # hubd is down: the items stay, with the last values.
    while_down = await items(bob, target, NODE)
    assert fields_of(while_down["porch-light"])["state"]["value"] == "true"
    hub.mark()
    async with hub.running(READY):
        after = await items(bob, target, NODE)
        assert set(after) == DEVICES
        for device, names in before.items():
            assert names <= set(fields_of(after[device])), device


async def test_reload_removing_a_reader_removes_its_access(
    server: Server, service: str, tmp_path: Path
) -> None:
    """On a service the member affiliation goes; on PEP the presence subscription does.

    The same reload removes the dimmer: its items go too (uwpx: and its form field).
    """
    target = _target(server, service)
    node = f"urn:example:reload:{service}"
    hub = _hub(server, tmp_path / "hubd", service, node=node)
    bob = await _client(server, "bob")
    async with hub.running(READY):
        await _see_hub(server, bob, service)
        await wait_items(bob, target, node, DEVICES)
        owner = await connect_client(server, "hub", ACCOUNTS["hub"], resource="owner")  # type: ignore[arg-type]
        try:
            if service == "service":
                affiliations = await _affiliations(owner, target, node)
                assert affiliations.get(server.jid("bob")) == "member"
            hub.mark()
            text = hub.config_file.read_text()
            dimmer = "  - id: dimmer\n    name: Hall dimmer\n    driver: gpio.pwm\n    pin: 18\n"
            assert dimmer in text
            text = text.replace(dimmer, "")
            hub.config_file.write_text(
                text.replace(f"readers: [{server.jid('bob')}]", "readers: []")
            )
            assert hub.proc is not None
            hub.proc.send_signal(signal.SIGHUP)
            if service == "service":
                await hub.wait_for_log(r"pubsub: node .* 1 removed")
                assert server.jid("bob") not in await _affiliations(owner, target, node)
            else:
                await hub.wait_for_log(r"withdrew the presence subscription of bob@")
            await _until_gone(owner, target, node, "dimmer")
            if service == "pep":
                await _until_gone(owner, target, "xmpp.iot.actuators", "xmpp.iot.actuator.dimmer.")
                await _until_gone(owner, target, "xmpp.iot.ui", "", in_form="dimmer")
        finally:
            await owner.disconnect_and_wait()
        # The server has taken the change once it refuses (the request may overtake it).
        await _until_refused(bob, target, node)
    await bob.disconnect_and_wait()


async def test_a_node_configured_otherwise_is_configured_as_hubd_needs(
    server: Server, service: str, tmp_path: Path
) -> None:
    """publish-options are preconditions: a node that exists open with one item is fixed."""
    target = _target(server, service)
    node = f"urn:example:preexisting:{service}"
    owner = await connect_client(server, "hub", ACCOUNTS["hub"], resource="owner")  # type: ignore[arg-type]
    try:
        await request(owner, target, _create_open(node), "set")
    finally:
        await owner.disconnect_and_wait()
    hub = _hub(server, tmp_path / "hubd", service, node=node)
    bob, mallory = await _client(server, "bob"), await _client(server, "mallory")
    try:
        async with hub.running(READY):
            await _see_hub(server, bob, service)
            # max_items 1 would keep one device of three.
            await wait_items(bob, target, node, DEVICES)
            await hub.wait_for_log(rf"pubsub: configured node {node}")
            with pytest.raises(Refused):  # no longer open
                await items(mallory, target, node)
    finally:
        await bob.disconnect_and_wait()
        await mallory.disconnect_and_wait()


def _create_open(node: str) -> str:
    fields = {"pubsub#access_model": "open", "pubsub#max_items": "1"}
    form = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
    return (
        f"<pubsub xmlns='{PUBSUB}'><create node='{node}'/><configure>"
        f"<x xmlns='{DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
        f"<value>{NODE_CONFIG}</value></field>{form}</x></configure></pubsub>"
    )


async def _until_gone(
    owner: TestClient, target: str, node: str, prefix: str, in_form: str = ""
) -> None:
    """Until no item id of ``node`` starts with ``prefix`` (or no form field names ``in_form``)."""
    async with asyncio.timeout(10):
        while True:
            found = await items(owner, target, node)
            if in_form:
                named = [
                    var
                    for payload in found.values()
                    for field in payload.iter(f"{{{DATA}}}field")
                    if in_form in (var := field.get("var", ""))
                ]
                if found and not named:
                    return
            elif not any(item_id.startswith(prefix) for item_id in found):
                return
            await asyncio.sleep(0.1)


async def _until_refused(client: TestClient, target: str, node: str) -> None:
    async with asyncio.timeout(10):
        while True:
            try:
                await items(client, target, node)
            except Refused:
                return
            await asyncio.sleep(0.1)


async def _forge_events(client: TestClient, hub_jid: str) -> None:
    """What a publisher into the hub's nodes would make the server send: an actuator off."""
    client.send_raw(
        f"<message to='{hub_jid}' type='headline'><event xmlns='{EVENT}'>"
        "<items node='xmpp.iot.actuators'><item id='xmpp.iot.actuator.porch-light.state'>"
        f"<val xmlns='{UWPX}' type='bool'>0</val></item></items>"
        f"<items node='{NODE}'><item id='porch-light'><fields xmlns='{NODE}'>"
        "<node nodeId='porch-light'><timestamp value='2025-01-01T00:00:00Z'>"
        "<boolean name='state' value='false'/></timestamp></node></fields></item></items>"
        "</event></message>"
    )


async def _ask(client: TestClient, hub_jid: str, text: str) -> str:
    client.send_message(mto=hub_jid, mbody=text, mtype="chat")
    reply = await client.wait_message(lambda m: m["from"].bare == hub_jid and bool(m["body"]))
    return str(reply["body"])


async def _affiliations(owner: TestClient, target: str, node: str = NODE) -> dict[str, str]:
    answer = await request(
        owner, target, f"<pubsub xmlns='{OWNER}'><affiliations node='{node}'/></pubsub>"
    )
    return {
        entry.get("jid", "").split("/")[0]: entry.get("affiliation", "")
        for entry in answer.iter(f"{{{OWNER}}}affiliation")
    }


UWPX = "urn:xmpp:uwpx:iot"
DATA = "jabber:x:data"
PUBSUB = "http://jabber.org/protocol/pubsub"
EVENT = "http://jabber.org/protocol/pubsub#event"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"


async def _check_uwpx(reader: TestClient, target: str) -> None:
    """esp32-xmpp-iot's three nodes: one <val> per field, a form naming every item."""
    sensors = await wait_items(
        reader, target, "xmpp.iot.sensors", {"xmpp.iot.sensor.front-door.state"}
    )
    actuators = await wait_items(
        reader,
        target,
        "xmpp.iot.actuators",
        {"xmpp.iot.actuator.porch-light.state", "xmpp.iot.actuator.dimmer.level"},
    )
    porch = actuators["xmpp.iot.actuator.porch-light.state"]
    assert (porch.tag, porch.get("type"), porch.text) == (f"{{{UWPX}}}val", "bool", "1")
    level = actuators["xmpp.iot.actuator.dimmer.level"]
    assert level.get("type") == "double"
    assert float(level.text or "x") >= 0
    assert "xmpp.iot.sensor.porch-light.online" in sensors
    ui = await wait_items(reader, target, "xmpp.iot.ui", {"current"})
    form = ui["current"]
    assert form.tag == f"{{{DATA}}}x"
    field_vars = {f.get("var") for f in form.iter(f"{{{DATA}}}field")}
    assert field_vars == set(sensors) | set(actuators)
