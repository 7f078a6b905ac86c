"""Remote hubs across federation: the house hub on Prosody, the garage hub on ejabberd.

Like tests/e2e/test_remotes.py, but the two hubs have accounts on two servers
federated over s2s on loopback (hubd/testing/federation.py): the house hub is
``hub@home.localhost``, the garage hub ``garage-hub@away.localhost``, each a
real hubd process with its own mock pins, and the person (alice, carol) is on
``home.localhost``.  Every request to the garage goes house -> s2s -> garage
and back.  The garage lists the house hub's bare JID in its own ``access:``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from accounts import ACCOUNTS
from federated import start_federation
from hubd_process import DEFAULT_DEVICES, HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, field_values, iq, readout
from pty_device import Pty
from remote_hubs import remotes_yaml
from test_remotes import GARAGE_DEVICES, garage_light, nodes_by_id, set_light, tree_event
from xmpp_client import TestClient, connect_client

from hubd.testing.federation import Federation

ONLINE = r"remote garage \S+ online: 2 node\(s\)"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    made = start_federation(tmp_path_factory.mktemp("federation"))
    try:
        yield made
    finally:
        made.stop()


@pytest.fixture
def garage_role() -> str:
    """The list the garage hub names the house hub in (parametrize to change it)."""
    return "readers"


def _garage(
    federation: Federation, workdir: Path, role: str, devices: str, *, verbose: bool = False
) -> HubdProcess:
    """The remote hub on away.localhost (not started): alice owns it, the house hub has ``role``."""
    return HubdProcess(
        workdir,
        federation.away,  # type: ignore[arg-type]
        verbose=verbose,  # DEBUG: what the serial device said
        account="garage-hub",
        password=ACCOUNTS["garage-hub"],
        devices=devices,
        access_lists={
            "owners": [federation.home.jid("alice")],
            role: [federation.home.jid("hub")],
        },
    )


def _house(
    federation: Federation, workdir: Path, garage: HubdProcess, devices: str = DEFAULT_DEVICES
) -> HubdProcess:
    """The front hub on home.localhost (not started), the garage one of its remotes."""
    home = federation.home
    return HubdProcess(
        workdir,
        home,
        devices=devices,
        verbose=devices != DEFAULT_DEVICES,
        access_lists={
            "owners": [home.jid("alice")],
            "controllers": [home.jid("carol")],
            "readers": [home.jid("bob")],
        },
        extra_config=remotes_yaml("garage", garage.jid),
    )


@pytest.fixture
def garage(
    federation: Federation, tmp_path_factory: pytest.TempPathFactory, garage_role: str
) -> HubdProcess:
    """The garage hub with a door and a light on mock pins (not started)."""
    return _garage(federation, tmp_path_factory.mktemp("garage"), garage_role, GARAGE_DEVICES)


@pytest.fixture
async def house(
    federation: Federation, tmp_path_factory: pytest.TempPathFactory, garage: HubdProcess
) -> AsyncIterator[HubdProcess]:
    """The front hub on home.localhost, started after the garage, with its tree fetched."""
    async with garage.running():
        front = _house(federation, tmp_path_factory.mktemp("house"), garage)
        async with front.running(ONLINE):
            yield front


@pytest.fixture
async def alice(federation: Federation) -> AsyncIterator[TestClient]:
    """Alice on home.localhost: owner of both hubs."""
    client = await connect_client(federation.home, "alice", ACCOUNTS["alice"])
    yield client
    await client.disconnect_and_wait()


@pytest.fixture
async def carol(federation: Federation) -> AsyncIterator[TestClient]:
    """Carol on home.localhost: a controller of the house hub, unknown to the garage."""
    client = await connect_client(federation.home, "carol", ACCOUNTS["carol"])
    yield client
    await client.disconnect_and_wait()


async def test_browse_the_garage_across_servers(house: HubdProcess, alice: TestClient) -> None:
    assert house.jid.startswith("hub@home.localhost/")
    children = await iq(
        alice, house.jid, f"<getChildDataSources xmlns='{CONC}' sourceId='MeteringTopology'/>"
    )
    assert isinstance(children, Element), children
    sources = {s.get("sourceId"): s.get("name") for s in children.findall(f"{{{CONC}}}dataSource")}
    assert sources == {"gpio": sources["gpio"], "garage": "garage hub"}
    nodes = nodes_by_id(
        await iq(alice, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    )
    assert set(nodes) == {"door", "light"}
    assert nodes["door"].get("displayName") == "Garage door"
    assert nodes["light"].get("isControllable") == "true"
    found = await iq(
        alice, house.jid, f"<containsNode xmlns='{CONC}' nodeId='door' sourceId='garage'/>"
    )
    assert isinstance(found, Element)
    assert found.text == "true"


async def test_read_a_garage_node_across_servers(house: HubdProcess, carol: TestClient) -> None:
    accepted, payloads = await readout(
        carol,
        house.jid,
        f"<req xmlns='{SD}' seqnr='41' momentary='true'><node nodeId='porch-light'/>"
        "<node nodeId='door' sourceId='garage'/></req>",
    )
    assert accepted.get("seqnr") == "41"
    assert [p.get("done") for p in payloads] == [None, "true"]
    assert {p.get("seqnr") for p in payloads} == {"41"}
    values = {**field_values(payloads[0]), **field_values(payloads[1])}
    assert values == {"porch-light": {"state": "false"}, "door": {"state": "false"}}
    remote = payloads[1].find(f"{{{SD}}}node")
    assert remote is not None
    assert (remote.get("nodeId"), remote.get("sourceId")) == ("door", "garage")


@pytest.mark.parametrize("garage_role", ["controllers"])
async def test_set_a_garage_node_carried_out_at_the_garage(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    answer = await iq(carol, house.jid, set_light("true"), kind="set")
    assert isinstance(answer, Element), answer
    assert answer.tag == f"{{{CTRL}}}setResponse"
    assert await garage_light(alice, garage) == "true"
    # The garage audits the house hub, by its address on the other server.
    await garage.wait_for_log(r"control by hub@home\.localhost\S*: light\.state = True done")
    await house.wait_for_log(r"control by carol@home\.localhost\S*: garage: light\.state")


async def test_a_read_only_grant_gives_the_garages_forbidden(
    house: HubdProcess, garage: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    # Carol controls at the house; the garage lets the house hub read only.
    refused = await iq(carol, house.jid, set_light("true"), kind="set")
    assert isinstance(refused, IqFailure)
    assert refused.condition == "forbidden"
    assert refused.text.startswith("garage: ")
    assert await garage_light(alice, garage) == "false"


async def test_the_garage_stopped_goes_offline_and_comes_back(
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
    assert nodes["door"].get("state") == "ErrorUnsigned"
    message = nodes["door"].find(f"{{{CONC}}}message")
    assert message is not None
    assert message.text == "garage: the remote hub went offline"
    _, payloads = await readout(
        alice,
        house.jid,
        f"<req xmlns='{SD}' seqnr='46' momentary='true'><node nodeId='door' sourceId='garage'/>"
        "</req>",
    )
    assert [p.tag for p in payloads] == [f"{{{SD}}}failure"]

    house.mark()
    garage.start()
    await house.wait_for_log(ONLINE, timeout=30)
    nodes = nodes_by_id(
        await iq(alice, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
    )
    assert nodes["door"].get("state") == "None"
    _, payloads = await readout(
        alice,
        house.jid,
        f"<req xmlns='{SD}' seqnr='47' momentary='true'><node nodeId='door' sourceId='garage'/>"
        "</req>",
    )
    assert field_values(payloads[0]) == {"door": {"state": "false"}}
    assert house.log().count("offline: the remote hub went offline") == 1  # said once


async def test_strangers_on_either_server_are_refused_here(
    federation: Federation, house: HubdProcess, garage: HubdProcess
) -> None:
    before = len(garage.log())
    for server in (federation.home, federation.away):
        mallory = await connect_client(server, "mallory", ACCOUNTS["mallory"])  # type: ignore[arg-type]
        try:
            tree = await iq(mallory, house.jid, f"<getAllNodes xmlns='{CONC}' sourceId='garage'/>")
            assert isinstance(tree, IqFailure), server
            assert tree.condition == "forbidden"
            read = await iq(
                mallory,
                house.jid,
                f"<req xmlns='{SD}' seqnr='50'><node nodeId='door' sourceId='garage'/></req>",
            )
            assert isinstance(read, IqFailure), server
            assert read.condition == "forbidden"
        finally:
            await mallory.disconnect_and_wait()
    assert "mallory" not in garage.log()[before:]  # nothing of it reached the garage


async def test_tree_events_of_the_garage_across_servers(
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
    message = await alice.wait_message(tree_event("nodeStatusChanged", "door"), timeout=30)
    assert message.xml.find(f"{{{CONC}}}nodeStatusChanged").get("state") == "None"


async def test_a_serial_device_on_the_garages_pty_across_servers(
    federation: Federation, tmp_path: Path, alice: TestClient, carol: TestClient
) -> None:
    """Each hub its own pseudo-terminal: the garage's read and written to from home."""
    weather = Pty(tmp_path / "usb-Arduino_Nano_5543-if00")
    hall = Pty(tmp_path / "usb-Arduino_Uno_7731-if00")
    weather.plug()
    hall.plug()
    devices = f"""
  - id: weather
    driver: serial.lines
    port: {weather.link}
    baudrate: 9600
    format: json
    fields:
      temperature: {{unit: "°C"}}
"""
    house_devices = devices.replace("weather", "hall").replace(str(weather.link), str(hall.link))
    garage = _garage(
        federation, tmp_path / "garage", "controllers", GARAGE_DEVICES + devices, verbose=True
    )
    try:
        async with garage.running(r"node weather is online"):
            await garage.wait_for_log(r"connected to ")
            # The port is open (pyserial dropped what came before): the device speaks.
            weather.write(b'{"temperature": 21.50}\r\n')
            await garage.wait_for_log(r"line b'\{\"temperature\": 21\.50")
            house = _house(federation, tmp_path / "house", garage, DEFAULT_DEVICES + house_devices)
            async with house.running(r"remote garage \S+ online: 3 node\(s\)"):
                await house.wait_for_log(r"node hall is online")
                hall.write(b'{"temperature": 19.25}\n')
                await house.wait_for_log(r"line b'\{\"temperature\": 19\.25")
                _, payloads = await readout(
                    alice,
                    house.jid,
                    f"<req xmlns='{SD}' seqnr='80' all='true'><node nodeId='hall'/>"
                    "<node nodeId='weather' sourceId='garage'/></req>",
                )
                values = {k: v for p in payloads for k, v in field_values(p).items()}
                assert values["hall"]["temperature"] == "19.25"
                assert values["weather"]["temperature"] == "21.50"
                assert values["weather"]["online"] == "true"
                answer = await iq(
                    carol,
                    house.jid,
                    f"<set xmlns='{CTRL}'><node nodeId='weather' sourceId='garage'/>"
                    "<string name='send' value='LED ON'/></set>",
                    "set",
                )
                assert isinstance(answer, Element), answer
                await weather.wait_received(b"LED ON\n")
    finally:
        weather.unplug()
        hall.unplug()
