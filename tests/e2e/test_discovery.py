"""XEP-0030 service discovery of the node tree, and the hub's vCard, end to end.

A real hubd process and real clients: the owner (alice) sees every device, a
guest granted one device (bob) sees that one, a stranger (mallory) sees none
and learns no device id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hubd_process import DEFAULT_DEVICES, HubdProcess
from iot_client import IqFailure, iq
from slixmpp import JID
from test_daemon import EXPECTED_FEATURES, disco_features
from xmpp_client import TestClient

from hubd.testing.prosody import ProsodyServer

ITEMS = "http://jabber.org/protocol/disco#items"
INFO = "http://jabber.org/protocol/disco#info"
VCARD = "vcard-temp"

# bob is a reader of the porch light only, not of the hub.
GUEST_DEVICES = DEFAULT_DEVICES.replace(
    "    pin: 17\n", "    pin: 17\n    access: {readers: [bob@localhost]}\n", 1
)


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    process = HubdProcess(tmp_path / "hubd", prosody, devices=GUEST_DEVICES)
    text = process.config_file.read_text()
    process.config_file.write_text(text.replace("readers: [bob@localhost]", "readers: []", 1))
    async with process.running() as running:
        yield running


def _items(answer: object) -> list[tuple[str | None, str | None, str | None]]:
    assert not isinstance(answer, IqFailure), answer
    assert answer.tag == f"{{{ITEMS}}}query"  # type: ignore[attr-defined]
    return [
        (item.get("jid"), item.get("node"), item.get("name"))
        for item in answer.findall(f"{{{ITEMS}}}item")  # type: ignore[attr-defined]
    ]


async def test_the_owner_browses_every_device(hub: HubdProcess, alice: TestClient) -> None:
    items = _items(await iq(alice, hub.jid, f"<query xmlns='{ITEMS}'/>"))
    assert items == [
        (hub.jid, "porch-light", "Porch light"),
        (hub.jid, "front-door", "front-door"),
    ]
    info = await iq(alice, hub.jid, f"<query xmlns='{INFO}' node='porch-light'/>")
    assert not isinstance(info, IqFailure), info
    assert info.get("node") == "porch-light"
    identities = [(i.get("category"), i.get("type"), i.get("name")) for i in info]
    assert ("hierarchy", "leaf", "Porch light") in identities
    features = [f.get("var") for f in info.findall(f"{{{INFO}}}feature")]
    # A writable output: readout, control and events.
    assert features == [
        INFO,
        "urn:xmpp:iot:sensordata",
        "urn:xmpp:iot:control",
        "urn:xmpp:iot:events",
    ]
    door = await iq(alice, hub.jid, f"<query xmlns='{INFO}' node='front-door'/>")
    assert not isinstance(door, IqFailure)
    door_features = [f.get("var") for f in door.findall(f"{{{INFO}}}feature")]
    assert "urn:xmpp:iot:control" not in door_features  # an input has nothing to set
    assert "urn:xmpp:iot:sensordata" in door_features
    # A device has no children; an unknown node is item-not-found for the owner.
    assert _items(await iq(alice, hub.jid, f"<query xmlns='{ITEMS}' node='porch-light'/>")) == []
    missing = await iq(alice, hub.jid, f"<query xmlns='{INFO}' node='garage'/>")
    assert isinstance(missing, IqFailure)
    assert missing.condition == "item-not-found"


async def test_a_guest_sees_only_the_device_granted(hub: HubdProcess, bob: TestClient) -> None:
    items = _items(await iq(bob, hub.jid, f"<query xmlns='{ITEMS}'/>"))
    assert items == [(hub.jid, "porch-light", "Porch light")]
    assert not isinstance(
        await iq(bob, hub.jid, f"<query xmlns='{INFO}' node='porch-light'/>"), IqFailure
    )
    hidden = await iq(bob, hub.jid, f"<query xmlns='{INFO}' node='front-door'/>")
    missing = await iq(bob, hub.jid, f"<query xmlns='{INFO}' node='garage'/>")
    # The same answer as a device that does not exist.
    assert isinstance(hidden, IqFailure)
    assert isinstance(missing, IqFailure)
    assert (
        (hidden.type, hidden.condition)
        == (missing.type, missing.condition)
        == (
            "cancel",
            "item-not-found",
        )
    )


async def test_a_stranger_learns_no_device(hub: HubdProcess, mallory: TestClient) -> None:
    assert _items(await iq(mallory, hub.jid, f"<query xmlns='{ITEMS}'/>")) == []
    answers = [
        await iq(mallory, hub.jid, f"<query xmlns='{kind}' node='{node}'/>")
        for kind in (INFO, ITEMS)
        for node in ("porch-light", "garage")
    ]
    for answer in answers:
        assert isinstance(answer, IqFailure), answer
        assert (answer.type, answer.condition) == ("cancel", "forbidden")
        assert "porch" not in answer.text
    # The hub itself is still described to anyone (caps need it), unchanged.
    features, identities = await disco_features(mallory, hub.jid)
    assert features == EXPECTED_FEATURES
    assert identities == [("client", "bot")]


async def test_the_hub_publishes_a_vcard_naming_its_devices(
    hub: HubdProcess, alice: TestClient
) -> None:
    # The server serves it for the bare JID.  Earlier hubs on this server published
    # other counts: ask again after each round trip to the hub until this one's is there.
    bare = JID(hub.jid).bare
    for _ in range(200):
        card = await iq(alice, bare, f"<vCard xmlns='{VCARD}'/>")
        assert not isinstance(card, IqFailure), card
        if "hub: 2 devices." in (card.findtext(f"{{{VCARD}}}DESC") or ""):
            break
        await alice.plugin["xep_0199"].ping(JID(hub.jid), timeout=10)
    else:
        raise AssertionError(f"no vCard naming 2 devices: {card}")
    assert card.findtext(f"{{{VCARD}}}FN") == "hubd"
