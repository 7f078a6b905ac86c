"""Two hubs on one server: the garage hub is a data source (``remotes:``) of the house hub.

Two real hubd processes, each with its own mock pins, and people as plain
slixmpp clients writing raw XEP-0326 stanzas.  The garage hub lists the house
hub's bare JID as a reader in its own ``access:``; the house hub names the
garage as ``remotes: [{id: garage, jid: garage-hub@.../hubd}]``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from accounts import ACCOUNTS
from defusedxml.ElementTree import fromstring
from hubd_process import HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, field_values, iq, readout
from remote_hubs import remote_hub, remotes_yaml
from slixmpp import JID
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

GARAGE_DEVICES = """
  - id: door
    name: Garage door
    driver: gpio.input
    pin: 5
  - id: light
    name: Garage light
    driver: gpio.output
    pin: 6
"""


@pytest.fixture
def garage_role() -> str:
    """The list the garage hub names the house hub in (parametrize to change it)."""
    return "readers"


@pytest.fixture
def remote_access() -> str:
    """The ``access:`` of the house's garage entry, as YAML (none unless parametrized)."""
    return ""


@pytest.fixture
def garage(prosody: ProsodyServer, tmp_path: Path, garage_role: str) -> HubdProcess:
    """The remote hub (not started): the house hub may read it, alice owns it."""
    return remote_hub(
        prosody,
        tmp_path / "garage",
        GARAGE_DEVICES,
        {"owners": [prosody.jid("alice")], garage_role: [prosody.jid("hub")]},
    )


@pytest.fixture
async def house(
    prosody: ProsodyServer, tmp_path: Path, garage: HubdProcess, remote_access: str
) -> AsyncIterator[HubdProcess]:
    """The front hub, started after the garage hub, with the garage's tree fetched."""
    async with garage.running():
        front = HubdProcess(
            tmp_path / "house",
            prosody,
            extra_config=remotes_yaml("garage", garage.jid, access=remote_access),
        )
        async with front.running(r"remote garage \S+ online: 2 node\(s\)"):
            yield front


def nodes_by_id(response: Element | IqFailure) -> dict[str, Element]:
    assert isinstance(response, Element), response
    return {n.get("nodeId", ""): n for n in response.findall(f"{{{CONC}}}node")}


async def test_remote_is_a_child_source_with_its_nodes(
    house: HubdProcess, alice: TestClient, bob: TestClient
) -> None:
    children = await iq(
        alice, house.jid, f"<getChildDataSources xmlns='{CONC}' sourceId='MeteringTopology'/>"
    )
    assert isinstance(children, Element), children
    sources = {s.get("sourceId"): s for s in children.findall(f"{{{CONC}}}dataSource")}
    assert set(sources) == {"gpio", "garage"}
    assert sources["garage"].get("name") == "garage hub"
    root = await iq(alice, house.jid, f"<getRootDataSources xmlns='{CONC}'/>")
    assert isinstance(root, Element)
    assert root[0].get("hasChildren") == "true"

    nodes = nodes_by_id(
        await iq(bob, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    )
    assert set(nodes) == {"door", "light"}
    assert nodes["door"].get("sourceId") == "garage"
    assert nodes["door"].get("displayName") == "Garage door"
    assert nodes["door"].get("nodeType") == "gpio.input"
    assert nodes["light"].get("isControllable") == "true"
    assert nodes["door"].get("state") == "None"
    # The house's own root holds only its own nodes: ids are unique within one hub only.
    own = nodes_by_id(
        await iq(bob, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='MeteringTopology'/>")
    )
    assert set(own) == {"porch-light", "front-door"}

    node = await iq(alice, house.jid, f"<getNode xmlns='{CONC}' nodeId='light' sourceId='garage'/>")
    assert isinstance(node, Element)
    assert (node.get("result"), node.get("nodeId"), node.get("sourceId")) == (
        "OK",
        "light",
        "garage",
    )
    for node_id, source_id, expected in (
        ("door", "garage", "true"),
        ("porch-light", "garage", "false"),
        ("door", "MeteringTopology", "false"),
    ):
        found = await iq(
            alice,
            house.jid,
            f"<containsNode xmlns='{CONC}' nodeId='{node_id}' sourceId='{source_id}'/>",
        )
        assert isinstance(found, Element)
        assert found.text == expected, (node_id, source_id)


async def test_unknown_remote_node_and_stranger(
    house: HubdProcess, alice: TestClient, mallory: TestClient
) -> None:
    missing = await iq(
        alice, house.jid, f"<getNode xmlns='{CONC}' nodeId='attic' sourceId='garage'/>"
    )
    assert isinstance(missing, IqFailure)
    assert missing.condition == "item-not-found"
    assert "attic" in missing.text
    stranger = await iq(mallory, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    assert isinstance(stranger, IqFailure)
    assert stranger.condition == "forbidden"


async def test_remote_offline_and_back(
    house: HubdProcess, garage: HubdProcess, alice: TestClient
) -> None:
    house.mark()
    await garage.stop()
    await house.wait_for_log(r"remote garage \S+ offline: the remote hub went offline")
    nodes = nodes_by_id(
        await iq(
            alice, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage' messages='true'/>"
        )
    )
    assert set(nodes) == {"door", "light"}  # still shown, with what is wrong
    assert nodes["door"].get("state") == "ErrorUnsigned"
    message = nodes["door"].find(f"{{{CONC}}}message")
    assert message is not None
    assert message.get("type") == "Error"
    assert message.text == "garage: the remote hub went offline"

    house.mark()
    garage.start()
    await house.wait_for_log(r"remote garage \S+ online: 2 node\(s\)")
    nodes = nodes_by_id(
        await iq(alice, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    )
    assert nodes["door"].get("state") == "None"
    assert house.log().count("offline: the remote hub went offline") == 1  # said once


async def test_read_a_remote_node_under_the_askers_seqnr(
    house: HubdProcess, alice: TestClient
) -> None:
    accepted, payloads = await readout(
        alice,
        house.jid,
        f"<req xmlns='{SD}' seqnr='41' momentary='true'>"
        "<node nodeId='door' sourceId='garage'/></req>",
    )
    assert accepted.tag == f"{{{SD}}}accepted"
    assert accepted.get("seqnr") == "41"
    assert [p.tag for p in payloads] == [f"{{{SD}}}fields"]
    assert payloads[0].get("done") == "true"
    assert field_values(payloads[0]) == {"door": {"state": "false"}}
    node = payloads[0].find(f"{{{SD}}}node")
    assert node is not None
    assert node.get("sourceId") == "garage"


async def test_read_own_and_remote_nodes_together(house: HubdProcess, bob: TestClient) -> None:
    _, payloads = await readout(
        bob,
        house.jid,
        f"<req xmlns='{SD}' seqnr='42' momentary='true'><node nodeId='porch-light'/>"
        "<node nodeId='light' sourceId='garage'/><field name='state'/></req>",
    )
    assert [p.get("done") for p in payloads] == [None, "true"]
    assert {p.get("seqnr") for p in payloads} == {"42"}
    values = {**field_values(payloads[0]), **field_values(payloads[1])}
    assert values == {"porch-light": {"state": "false"}, "light": {"state": "false"}}

    # No nodes named: every node, the remote's included, each under its source.
    _, everything = await readout(
        bob, house.jid, f"<req xmlns='{SD}' seqnr='43' momentary='true'/>"
    )
    sources = {
        (n.get("nodeId"), n.get("sourceId")) for p in everything for n in p.findall(f"{{{SD}}}node")
    }
    assert sources == {
        ("porch-light", "gpio"),
        ("front-door", "gpio"),
        ("door", "garage"),
        ("light", "garage"),
    }
    assert everything[-1].get("done") == "true"


async def test_remote_read_refused_for_strangers_and_unknown_nodes(
    house: HubdProcess, alice: TestClient, mallory: TestClient
) -> None:
    unknown = await iq(
        alice,
        house.jid,
        f"<req xmlns='{SD}' seqnr='44'><node nodeId='attic' sourceId='garage'/></req>",
    )
    assert isinstance(unknown, IqFailure)
    assert unknown.condition == "item-not-found"
    stranger = await iq(
        mallory,
        house.jid,
        f"<req xmlns='{SD}' seqnr='45'><node nodeId='door' sourceId='garage'/></req>",
    )
    assert isinstance(stranger, IqFailure)
    assert stranger.condition == "forbidden"


async def test_read_while_the_remote_is_offline_fails_its_nodes(
    house: HubdProcess, garage: HubdProcess, alice: TestClient
) -> None:
    house.mark()
    await garage.stop()
    await house.wait_for_log(r"remote garage \S+ offline")
    _, payloads = await readout(
        alice,
        house.jid,
        f"<req xmlns='{SD}' seqnr='46' momentary='true'><node nodeId='porch-light'/>"
        "<node nodeId='door' sourceId='garage'/></req>",
    )
    assert [p.tag for p in payloads] == [f"{{{SD}}}fields", f"{{{SD}}}failure"]
    error = payloads[1].find(f"{{{SD}}}error")
    assert error is not None
    assert (error.get("nodeId"), error.get("sourceId")) == ("door", "garage")
    assert error.text == "garage: the remote hub went offline"
    assert payloads[1].get("done") == "true"


SHED_TREE = (
    f"<getAllNodesResponse xmlns='{CONC}' result='OK'>"
    "<node nodeId='heater' displayName='Heater' nodeType='gpio.output' state='None'"
    " hasChildren='false' isReadable='true' isControllable='true'/>"
    "</getAllNodesResponse>"
)


@pytest.fixture
async def silent_shed(prosody: ProsodyServer) -> AsyncIterator[TestClient]:
    """A fake remote hub (plain slixmpp): it shows a tree, then never answers a readout."""
    client = await connect_client(prosody, "shed-hub", ACCOUNTS["shed-hub"], resource="hubd")

    def on_tree(stanza: object) -> None:
        reply = stanza.reply(clear=True)  # type: ignore[attr-defined]
        reply.xml.append(fromstring(SHED_TREE))
        reply.send()

    client.register_handler(
        Callback("tree", MatchXPath(f"{{jabber:client}}iq/{{{CONC}}}getAllNodes"), on_tree)
    )
    # Matched and dropped: slixmpp would otherwise answer feature-not-implemented.
    client.register_handler(
        Callback("silent", MatchXPath(f"{{jabber:client}}iq/{{{SD}}}req"), lambda _s: None)
    )
    yield client
    await client.disconnect_and_wait()


async def test_a_remote_that_does_not_answer_gives_a_failure_not_a_hang(
    prosody: ProsodyServer, tmp_path: Path, silent_shed: TestClient, alice: TestClient
) -> None:
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        extra_config=remotes_yaml("shed", str(silent_shed.boundjid), timeout=2),
    )
    async with front.running(r"remote shed \S+ online: 1 node\(s\)"):
        front.mark()
        _, payloads = await readout(
            alice,
            front.jid,
            f"<req xmlns='{SD}' seqnr='47' momentary='true'>"
            "<node nodeId='heater' sourceId='shed'/><node nodeId='front-door'/></req>",
        )
        # Not answering: offline here with the reason, said once; asked again, it is back.
        await front.wait_for_log(r"remote shed \S+ offline: no answer within 2 s")
        await front.wait_for_log(r"remote shed \S+ online: 1 node\(s\)")
        assert front.log().count("offline: no answer within 2 s") == 1
    assert [p.tag for p in payloads] == [f"{{{SD}}}fields", f"{{{SD}}}failure"]
    assert field_values(payloads[0]) == {"front-door": {"state": "false"}}
    error = payloads[1].find(f"{{{SD}}}error")
    assert error is not None
    assert (error.get("nodeId"), error.get("sourceId")) == ("heater", "shed")
    assert error.text == "shed: no answer within 2 s"
    assert payloads[1].get("done") == "true"


def set_light(value: str, source: str = " sourceId='garage'") -> str:
    return (
        f"<set xmlns='{CTRL}'><node nodeId='light'{source}/>"
        f"<boolean name='state' value='{value}'/></set>"
    )


async def garage_light(alice: TestClient, garage: HubdProcess) -> str:
    """The light's state as the garage hub itself reads it (alice owns the garage)."""
    _, payloads = await readout(
        alice,
        garage.jid,
        f"<req xmlns='{SD}' seqnr='90' momentary='true'><node nodeId='light'/></req>",
    )
    return field_values(payloads[0])["light"]["state"]


@pytest.mark.parametrize("garage_role", ["controllers"])
async def test_set_a_remote_node_carried_out_at_the_remote(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    answer = await iq(carol, house.jid, set_light("true"), kind="set")
    assert isinstance(answer, Element), answer
    assert answer.tag == f"{{{CTRL}}}setResponse"
    assert await garage_light(alice, garage) == "true"
    # Each hub audits it: the house who asked, the garage the house hub that asked it.
    await house.wait_for_log(r"control by carol@\S+: garage: light\.state = 'true' done")
    await garage.wait_for_log(r"control by hub@\S+: light\.state = True done")

    # The control form comes from the remote too.
    form = await iq(
        carol,
        house.jid,
        f"<getForm xmlns='{CTRL}'><node nodeId='light' sourceId='garage'/></getForm>",
    )
    assert isinstance(form, Element), form
    assert "state" in {f.get("var") for f in form.iter() if f.tag.endswith("}field")}


async def test_the_remotes_forbidden_comes_back_as_such(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    # The garage lists the house hub as a reader only: carol controls here, not there.
    refused = await iq(carol, house.jid, set_light("true"), kind="set")
    assert isinstance(refused, IqFailure)
    assert refused.condition == "forbidden"
    assert refused.text.startswith("garage: ")
    assert await garage_light(alice, garage) == "false"
    await house.wait_for_log(
        r"control by carol@\S+: garage: light.* refused: the remote hub refused"
    )


async def test_trust_here_comes_first(
    house: HubdProcess, garage: HubdProcess, bob: TestClient, mallory: TestClient
) -> None:
    garage.mark()
    reader = await iq(bob, house.jid, set_light("true"), kind="set")
    assert isinstance(reader, IqFailure)
    assert reader.condition == "forbidden"
    assert reader.text == "Access denied."
    stranger = await iq(mallory, house.jid, set_light("true"), kind="set")
    assert isinstance(stranger, IqFailure)
    assert stranger.condition == "forbidden"
    across = await iq(
        bob,
        house.jid,
        f"<set xmlns='{CTRL}'><node nodeId='light' sourceId='garage'/><node nodeId='porch-light'/>"
        "<boolean name='state' value='true'/></set>",
        kind="set",
    )
    assert isinstance(across, IqFailure)
    # None of these reached the garage hub.
    assert "control by" not in garage.log()


@pytest.mark.parametrize("remote_access", ["{readers: [mallory@localhost]}"])
async def test_the_remotes_own_access_grants_its_nodes_only(
    house: HubdProcess, mallory: TestClient
) -> None:
    _, payloads = await readout(
        mallory,
        house.jid,
        f"<req xmlns='{SD}' seqnr='60' momentary='true'>"
        "<node nodeId='door' sourceId='garage'/></req>",
    )
    assert field_values(payloads[0]) == {"door": {"state": "false"}}
    own = await iq(
        mallory, house.jid, f"<req xmlns='{SD}' seqnr='61'><node nodeId='porch-light'/></req>"
    )
    assert isinstance(own, IqFailure)
    assert own.condition == "item-not-found"
    tree = nodes_by_id(
        await iq(mallory, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    )
    assert set(tree) == {"door", "light"}
    refused = await iq(mallory, house.jid, set_light("true"), kind="set")
    assert isinstance(refused, IqFailure)
    assert refused.condition == "forbidden"


async def _say(client: TestClient, hub: HubdProcess, text: str) -> str:
    """Type ``text`` to ``hub`` in chat; return its reply."""
    client.make_message(mto=hub.jid, mbody=text, mtype="chat").send()
    reply = await client.wait_message(
        lambda m: m["from"].bare == hub.jid.split("/")[0] and bool(m["body"])
    )
    body: str = reply["body"]
    return body


@pytest.mark.parametrize("garage_role", ["controllers"])
async def test_chat_reads_sets_and_lists_remote_devices(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    assert (await _say(carol, house, "read garage/door")).startswith(
        "Garage door (garage): state off"
    )
    assert (await _say(carol, house, "read Garage/Light state")).startswith(
        "Garage light (garage): state off"
    )
    assert await _say(carol, house, "set garage/light on") == "garage/light: state on"
    assert await garage_light(alice, garage) == "true"
    assert await _say(carol, house, "set garage/light state off") == "garage/light: state off"
    assert await garage_light(alice, garage) == "false"
    listing = (await _say(carol, house, "list")).splitlines()
    # Grouped by source: this hub's devices, then the garage's under its id.
    assert listing[0] == "2 devices:"
    assert "garage: 2 devices:" in listing
    assert listing.index("garage: 2 devices:") == 3
    assert any(line.endswith("garage/light (Garage light): state off") for line in listing)
    assert any(line.endswith("garage/door (Garage door): state off") for line in listing)


async def test_chat_on_remote_devices_says_what_is_refused(
    house: HubdProcess, carol: TestClient, bob: TestClient, mallory: TestClient
) -> None:
    # The garage gave the house hub read access only: its refusal, in its words.
    refused = await _say(carol, house, "set garage/light on")
    assert refused.startswith("garage/light cannot be set: garage: Access denied"), refused
    assert (await _say(bob, house, "set garage/light on")).startswith("set needs control rights")
    assert (await _say(bob, house, "read garage/attic")) == (
        "garage has no device 'attic'; devices: garage/door, garage/light."
    )
    assert (await _say(carol, house, "set garage/door on")).startswith("garage/door ")
    assert await _say(mallory, house, "read garage/door") == "Not authorised."


async def test_a_loop_is_refused_not_followed(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient
) -> None:
    """The garage lists the house and the house lists the garage: both refuse the other."""
    house_jid = f"{prosody.jid('hub')}/hubd"
    garage = remote_hub(
        prosody,
        tmp_path / "garage",
        GARAGE_DEVICES,
        {"owners": [prosody.jid("alice")], "readers": [prosody.jid("hub")]},
        extra_config=remotes_yaml("house", house_jid),
    )
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        access_lists={"owners": [prosody.jid("alice")], "readers": [prosody.jid("garage-hub")]},
        extra_config=remotes_yaml("garage", garage.jid),
    )
    loop = "refused: a loop: each hub lists the other as a remote; not followed"
    async with garage.running(), front.running():
        await front.wait_for_log(rf"remote garage \S+ {loop}")
        await garage.wait_for_log(rf"remote house \S+ {loop}")
        sources = await iq(
            alice, front.jid, f"<getChildDataSources xmlns='{CONC}' sourceId='MeteringTopology'/>"
        )
        assert isinstance(sources, Element), sources
        names = {s.get("sourceId"): s.get("name") for s in sources}
        assert names["garage"] == "garage hub (offline)"
        assert (
            nodes_by_id(
                await iq(alice, front.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
            )
            == {}
        )
        _, payloads = await readout(
            alice, front.jid, f"<req xmlns='{SD}' seqnr='70' momentary='true'/>"
        )
        assert {n.get("sourceId") for p in payloads for n in p} == {"gpio"}  # nothing followed
    assert front.log().count(loop) == 1
    assert garage.log().count(loop) == 1


NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"


async def _command(client: TestClient, hub: HubdProcess, node: str, values: dict[str, str]) -> Any:
    """Run ad-hoc command ``node``: return (the first form's options, the completed answer)."""
    first = await client.plugin["xep_0050"].send_command(JID(hub.jid), node, timeout=10)
    form = first.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_DATA}}}x")
    assert form is not None
    options = [o.findtext(f"{{{NS_DATA}}}value") for o in form.iter(f"{{{NS_DATA}}}option")]
    submit = client.plugin["xep_0004"].make_form(ftype="submit")
    for var, value in values.items():
        submit.add_field(var=var, value=value)
    done = await client.plugin["xep_0050"].send_command(
        JID(hub.jid),
        node,
        action="complete",
        payload=submit,
        sessionid=first["command"]["sessionid"],
        timeout=10,
    )
    note = done.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_COMMANDS}}}note")
    assert note is not None
    return options, (note.get("type"), note.text)


@pytest.mark.parametrize("garage_role", ["controllers"])
async def test_adhoc_forms_read_and_set_remote_devices(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    options, (kind, text) = await _command(carol, house, "read", {"device": "garage/door"})
    assert {"porch-light", "garage/door", "garage/light"} <= set(options)
    assert kind == "info"
    assert text.startswith("Garage door (garage): state off")
    options, (kind, text) = await _command(
        carol, house, "set", {"target": "garage/light.", "value": "on"}
    )
    assert "garage/light." in options
    assert "garage/door." not in options  # an input: the garage says it cannot be controlled
    assert (kind, text) == ("info", "garage/light: state on")
    assert await garage_light(alice, garage) == "true"


def tree_event(kind: str, node_id: str) -> Any:
    def wanted(message: Any) -> bool:
        element = message.xml.find(f"{{{CONC}}}{kind}")
        return element is not None and element.get("nodeId") == node_id

    return wanted


async def test_tree_events_of_a_remote_source(
    house: HubdProcess, garage: HubdProcess, alice: TestClient
) -> None:
    subscribed = await iq(alice, house.jid, f"<subscribe xmlns='{CONC}' sourceId='garage'/>", "set")
    assert isinstance(subscribed, Element), subscribed
    await garage.stop()
    for node_id in ("door", "light"):
        message = await alice.wait_message(tree_event("nodeStatusChanged", node_id))
        event = message.xml.find(f"{{{CONC}}}nodeStatusChanged")
        assert (event.get("sourceId"), event.get("state")) == ("garage", "ErrorUnsigned")
        assert event.findtext(f"{{{CONC}}}message") == "garage: the remote hub went offline"
    garage.start()
    message = await alice.wait_message(tree_event("nodeStatusChanged", "door"), timeout=20)
    assert message.xml.find(f"{{{CONC}}}nodeStatusChanged").get("state") == "None"


async def test_a_remotes_own_tree_event_brings_its_tree_again(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient
) -> None:
    """A fake remote hub: it takes the front hub's subscription, then adds a node and says so."""
    shed = await connect_client(prosody, "shed-hub", ACCOUNTS["shed-hub"], resource="hubd")
    tree = {"nodes": SHED_TREE}
    subscribed = asyncio.Event()

    def on_tree(stanza: Any) -> None:
        reply = stanza.reply(clear=True)
        reply.xml.append(fromstring(tree["nodes"]))
        reply.send()

    def on_subscribe(stanza: Any) -> None:
        reply = stanza.reply(clear=True)
        reply.xml.append(fromstring(f"<subscribeResponse xmlns='{CONC}' result='OK'/>"))
        reply.send()
        subscribed.set()

    shed.register_handler(
        Callback("tree", MatchXPath(f"{{jabber:client}}iq/{{{CONC}}}getAllNodes"), on_tree)
    )
    shed.register_handler(
        Callback("sub", MatchXPath(f"{{jabber:client}}iq/{{{CONC}}}subscribe"), on_subscribe)
    )
    front = HubdProcess(
        tmp_path / "house",
        prosody,
        extra_config=remotes_yaml("shed", str(shed.boundjid)),
    )
    try:
        async with front.running(r"remote shed \S+ online: 1 node\(s\)"):
            await asyncio.wait_for(subscribed.wait(), 10)
            answer = await iq(
                alice, front.jid, f"<subscribe xmlns='{CONC}' sourceId='shed'/>", "set"
            )
            assert isinstance(answer, Element), answer
            tree["nodes"] = SHED_TREE.replace(
                "</getAllNodesResponse>",
                "<node nodeId='fan' displayName='Fan' nodeType='gpio.output' state='None'"
                " hasChildren='false' isReadable='true' isControllable='true'/>"
                "</getAllNodesResponse>",
            )
            event = shed.make_message(mto=front.jid)
            event.xml.append(
                fromstring(f"<nodeAdded xmlns='{CONC}' sourceId='MeteringTopology' nodeId='fan'/>")
            )
            event.send()
            message = await alice.wait_message(tree_event("nodeAdded", "fan"))
            added = message.xml.find(f"{{{CONC}}}nodeAdded")
            assert (added.get("sourceId"), added.get("displayName")) == ("shed", "Fan")
    finally:
        await shed.disconnect_and_wait()
