"""Three hubs on one server: a loop longer than two (A -> B -> C -> A) is refused, a chain works.

Three real hubd processes, each with its own mock pins: the house (``hub``)
lists the garage, the garage lists the shed, and (for the loop) the shed lists
the house.  Each hub's ``getAllNodes`` answer on ``MeteringTopology`` names
the hubs it reaches (``urn:hubd:remote-hubs:0``); a hub that finds itself in a
remote's answer refuses that remote, logged once at ERROR.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from xml.etree.ElementTree import Element

from hubd_process import HubdProcess
from iot_client import CONC, SD, iq, readout
from remote_hubs import remote_hub, remotes_yaml
from xmpp_client import TestClient

from hubd.testing.prosody import ProsodyServer

REACH = "urn:hubd:remote-hubs:0"
SHED_DEVICES = """
  - id: mower
    name: Mower bay
    driver: gpio.input
    pin: 7
"""
GARAGE_DEVICES = """
  - id: door
    name: Garage door
    driver: gpio.input
    pin: 5
"""
LONG_LOOP = "a loop: this hub is reached again through the remote's own remotes; not followed"


def _hubs(prosody: ProsodyServer, tmp_path: Path, *, loop: bool) -> list[HubdProcess]:
    """House -> garage -> shed, and shed -> house when ``loop``; each lets the one before in."""
    house_jid = f"{prosody.jid('hub')}/hubd"
    shed = remote_hub(
        prosody,
        tmp_path / "shed",
        SHED_DEVICES,
        {"owners": [prosody.jid("alice")], "readers": [prosody.jid("garage-hub")]},
        account="shed-hub",
        extra_config=remotes_yaml("house", house_jid) if loop else "",
    )
    garage = remote_hub(
        prosody,
        tmp_path / "garage",
        GARAGE_DEVICES,
        {"owners": [prosody.jid("alice")], "readers": [prosody.jid("hub")]},
        extra_config=remotes_yaml("shed", shed.jid),
    )
    readers = [prosody.jid("bob")] + ([prosody.jid("shed-hub")] if loop else [])
    house = HubdProcess(
        tmp_path / "house",
        prosody,
        access_lists={"owners": [prosody.jid("alice")], "readers": readers},
        extra_config=remotes_yaml("garage", garage.jid),
    )
    return [house, garage, shed]


async def _reach(client: TestClient, hub: HubdProcess) -> set[str]:
    answer = await iq(client, hub.jid, f"<getAllNodes xmlns='{CONC}' sourceId='MeteringTopology'/>")
    assert isinstance(answer, Element), answer
    hubs = answer.find(f"{{{REACH}}}hubs")
    return set() if hubs is None else {h.get("jid", "") for h in hubs}


async def test_a_chain_of_three_hubs_works_and_says_what_it_reaches(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient
) -> None:
    house, garage, shed = _hubs(prosody, tmp_path, loop=False)
    async with (
        shed.running(),
        garage.running(r"remote shed \S+ online: 1 node\(s\)"),
        house.running(r"remote garage \S+ online: 1 node\(s\)"),
    ):
        assert await _reach(alice, garage) == {prosody.jid("shed-hub")}
        assert await _reach(alice, shed) == set()  # no remotes: nothing added
        # The house's readout of all nodes: its own and the garage's, the garage's own only.
        _, payloads = await readout(
            alice, house.jid, f"<req xmlns='{SD}' seqnr='5' momentary='true'/>"
        )
        seen = {(n.get("sourceId"), n.get("nodeId")) for p in payloads for n in p}
        assert ("garage", "door") in seen
        assert not {s for s, _ in seen} - {"gpio", "garage"}
        # The house reaches both, once the garage's news (its presence) made it fetch again.
        await house.wait_for_log(rf"remote garage reaches: {re.escape(prosody.jid('shed-hub'))}")
        assert await _reach(alice, house) == {prosody.jid("garage-hub"), prosody.jid("shed-hub")}
        assert "a loop" not in house.log() + garage.log() + shed.log()


async def test_a_loop_of_three_hubs_is_refused_once_not_followed(
    prosody: ProsodyServer, tmp_path: Path, alice: TestClient
) -> None:
    house, garage, shed = _hubs(prosody, tmp_path, loop=True)
    refused = rf"remote \S+ \S+ refused: {re.escape(LONG_LOOP)}"
    hubs = (house, garage, shed)
    async with shed.running(), garage.running(), house.running():
        # Some hub finds itself in what its remote reaches: it refuses that remote.
        await _first_log(hubs, refused)
        # Nothing recurses: a readout of all nodes at each hub ends, with no storm.
        for seqnr, hub in enumerate(hubs, start=80):
            _, payloads = await readout(
                alice, hub.jid, f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'/>"
            )
            assert payloads  # it ended (done), whatever each hub could give
    for hub in hubs:
        assert len(re.findall(refused, hub.log())) <= 1, hub.log()  # once at most, each


async def _first_log(hubs: tuple[HubdProcess, ...], pattern: str) -> None:
    waits = [asyncio.ensure_future(hub.wait_for_log(pattern, timeout=30)) for hub in hubs]
    try:
        done, _ = await asyncio.wait(waits, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        assert any(not w.exception() for w in done), [w.exception() for w in done]
    finally:
        for wait in waits:
            wait.cancel()
