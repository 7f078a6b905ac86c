"""XEP-0324 field narrowing in the people interfaces: chat commands and ad-hoc forms.

A provisioning server may open only some fields (canRead) and some control
parameters (canControl) of a device to a JID the access lists do not name.
Nothing people see may reveal, and nothing they send may set, any other field:
such a field is answered exactly like one the device does not have.  A fake
hub, no server.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from slixmpp import JID, ClientXMPP
from test_commands import HUMIDITY, LEVEL, NOW, TEMPERATURE, FakeDriver
from test_commands import STATE_RW as STATE

from hubd.core.access import AccessPolicy, Provisioned
from hubd.core.driver import DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import NodeState
from hubd.core.node import Node
from hubd.events.engine import EventEngine
from hubd.events.store import Store
from hubd.people.commands import ChatCommands
from hubd.people.watch import register_watch
from hubd.testing.drivers import make_context
from hubd.xmpp.adhoc import AdhocService, Session

DAVE = "dave@example.org/phone"  # provisioned: narrowed to some fields and parameters
CAROL = "carol@example.org/laptop"  # a listed controller: never narrowed
ERIN = "erin@example.org/tablet"  # provisioned, but not narrowed to any field

#: What the provisioning server said of dave: read temperature and state, set only state.
DAVE_ANSWER = Provisioned(
    reads=True,
    controls=True,
    read_fields=frozenset({"temperature", "state"}),
    parameters=frozenset({"state"}),
)


@dataclass
class House:
    commands: ChatCommands
    access: AccessPolicy
    drivers: dict[str, FakeDriver]


def make_house() -> House:
    drivers: dict[str, FakeDriver] = {}
    nodes = []
    for node_id, name, fields in (
        ("weather", "Weather", [TEMPERATURE, HUMIDITY]),
        ("lamp", "Lamp", [STATE, LEVEL]),
    ):
        ctx, _ = make_context(node_id)
        config = DriverConfig(id=node_id, name=name, driver="fake.thing")
        drivers[node_id] = FakeDriver(config, ctx, fields)
        nodes.append(Node.create(config, drivers[node_id]))
    hub = Hub(nodes, now=lambda: NOW)
    for node in nodes:
        hub.set_state(node.id, NodeState.ONLINE)
    drivers["weather"].values.update(
        temperature=(Decimal("21.5"), NOW), humidity=(Decimal("45"), NOW)
    )
    drivers["lamp"].values.update(state=(False, NOW), level=(Decimal("0.25"), NOW))
    access = AccessPolicy(controllers=["carol@example.org"])
    access.grant_provisioned("dave@example.org", DAVE_ANSWER)
    access.grant_provisioned("erin@example.org", Provisioned(reads=True, controls=True))
    commands = ChatCommands(hub, access, now=lambda: NOW, timeout=0.5)
    return House(commands, access, drivers)


def unknown_field_reply(reply: str, typed: str) -> str:
    """A refusal with the field name as typed replaced, to compare two refusals."""
    assert f"'{typed}'" in reply, reply
    return reply.replace(f"'{typed}'", "'FIELD'")


# ----------------------------------------------------------------------- chat commands


async def test_read_shows_and_asks_for_only_the_opened_fields() -> None:
    house = make_house()
    assert await house.commands.handle(DAVE, "read weather") == (
        "Weather: temperature 21.5 °C (just now)"
    )
    # The device was asked for the opened fields only, not for everything.
    assert house.drivers["weather"].asked == [frozenset({"temperature"})]
    assert await house.commands.handle(CAROL, "read weather") == (
        "Weather (just now):\n- temperature 21.5 °C\n- humidity 45%"
    )


async def test_read_of_a_closed_field_is_answered_like_a_missing_one() -> None:
    house = make_house()
    closed = await house.commands.handle(DAVE, "read weather humidity")
    missing = await house.commands.handle(DAVE, "read weather pressure")
    assert unknown_field_reply(closed, "humidity") == unknown_field_reply(missing, "pressure")
    assert closed == "weather has no field 'humidity'; fields: temperature."
    assert house.drivers["weather"].asked == [], "nothing was read"
    # A unique beginning of a closed field does not find it either.
    assert "no field 'hum'" in await house.commands.handle(DAVE, "read weather hum")


async def test_list_shows_only_the_opened_fields() -> None:
    house = make_house()
    await house.commands.hub.read("weather")  # fill the cache, as publishing drivers do
    await house.commands.hub.read("lamp")
    assert (await house.commands.handle(DAVE, "list")).splitlines() == [
        "2 devices:",
        "- weather (Weather): temperature 21.5 °C",
        "- lamp (Lamp): state off",
    ]
    assert (await house.commands.handle(CAROL, "list")).splitlines()[1:] == [
        "- weather (Weather): temperature 21.5 °C · humidity 45%",
        "- lamp (Lamp): state off · level 0.25",
    ]


async def test_set_of_a_closed_parameter_is_answered_like_a_missing_one() -> None:
    house = make_house()
    closed = await house.commands.handle(DAVE, "set lamp level 0.5")
    missing = await house.commands.handle(DAVE, "set lamp brightness 0.5")
    assert unknown_field_reply(closed, "level") == unknown_field_reply(missing, "brightness")
    assert closed == "lamp has no field 'level'; fields: state. Try: set lamp state on"
    # A readable field that is not a parameter for dave: no hint that it exists.
    sensor = await house.commands.handle(DAVE, "set weather temperature 3")
    assert sensor == (
        "weather has no field 'temperature'; fields: none can be set. Try: read weather"
    )
    assert house.drivers["lamp"].written == []


async def test_set_of_an_opened_parameter_works() -> None:
    house = make_house()
    assert await house.commands.handle(DAVE, "set lamp state on") == "Lamp: state on"
    # With one parameter open, "set DEVICE VALUE" sets it, as for a one-field device.
    assert await house.commands.handle(DAVE, "set lamp off") == "Lamp: state off"
    assert house.drivers["lamp"].written == [("state", True), ("state", False)]
    assert "Try: set lamp state on" in await house.commands.handle(DAVE, "help set")


async def test_jids_without_narrowing_are_unaffected() -> None:
    house = make_house()
    for sender in (CAROL, ERIN):  # listed; provisioned without field lists
        assert "humidity 45%" in await house.commands.handle(sender, "read weather")
        assert await house.commands.handle(sender, "read weather humidity") == (
            "Weather: humidity 45% (just now)"
        )
        assert await house.commands.handle(sender, "set lamp level 0.5") == "Lamp: level 0.5"
    assert house.drivers["lamp"].written == [("level", Decimal("0.5"))] * 2
    # A listed controller keeps every field even when the server also answered for it.
    house.access.grant_provisioned("carol@example.org", DAVE_ANSWER)
    assert await house.commands.handle(CAROL, "set lamp level 1") == "Lamp: level 1"


async def test_watch_of_a_closed_field_is_answered_like_a_missing_one(tmp_path: Path) -> None:
    house = make_house()
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    try:
        engine = EventEngine(house.commands.hub, store, now=lambda: NOW)
        register_watch(house.commands, engine)
        closed = await house.commands.handle(DAVE, "watch weather humidity > 50")
        missing = await house.commands.handle(DAVE, "watch weather pressure > 50")
        assert unknown_field_reply(closed, "humidity") == unknown_field_reply(missing, "pressure")
        assert engine.subscriptions_of("dave@example.org") == []
        opened = await house.commands.handle(DAVE, "watch weather temperature > 25")
        assert opened.startswith("Watching Weather (temperature > 25)")
    finally:
        await store.close()


# ------------------------------------------------------------------------ ad-hoc forms


@pytest.fixture
async def adhoc() -> tuple[AdhocService, House]:
    house = make_house()
    xmpp = ClientXMPP("hub@example.org/hub", "unused")  # never connected
    for plugin in ("xep_0004", "xep_0030", "xep_0050"):
        xmpp.register_plugin(plugin)
    return AdhocService(xmpp, house.commands, house.access), house


async def run(service: AdhocService, node: str, sender: str, values: dict[str, str]) -> Session:
    """Execute one single-stage command as ``sender`` and submit ``values``; the last session."""
    session: Session = {"from": JID(sender)}
    session = await service.table[node].start(JID(sender), session)
    form = service.xmpp.plugin["xep_0004"].make_form(ftype="submit")
    for var, value in values.items():
        form.add_field(var=var, value=value)
    result: Session = await session["next"](form, session)
    return result


def options(session: Session, var: str) -> list[str]:
    fields: dict[str, Any] = session["payload"].get_fields()
    return [o["value"] for o in fields[var].get_options()]


async def test_adhoc_set_offers_and_takes_only_the_opened_parameters(
    adhoc: tuple[AdhocService, House],
) -> None:
    service, house = adhoc
    form = await service.table["set"].start(JID(DAVE), {"from": JID(DAVE)})
    assert options(form, "target") == ["lamp.state"]
    carol = await service.table["set"].start(JID(CAROL), {"from": JID(CAROL)})
    assert options(carol, "target") == ["lamp.state", "lamp.level"]

    closed = await run(service, "set", DAVE, {"target": "lamp.level", "value": "0.5"})
    missing = await run(service, "set", DAVE, {"target": "lamp.dial", "value": "0.5"})
    assert closed["notes"] == [("error", "Nothing to set called 'lamp.level'.")]
    assert missing["notes"] == [("error", "Nothing to set called 'lamp.dial'.")]
    assert house.drivers["lamp"].written == []
    done = await run(service, "set", DAVE, {"target": "lamp.state", "value": "on"})
    assert done["notes"] == [("info", "Lamp: state on")]
    assert house.drivers["lamp"].written == [("state", True)]


async def test_adhoc_read_and_status_show_only_the_opened_fields(
    adhoc: tuple[AdhocService, House],
) -> None:
    service, house = adhoc
    await house.commands.hub.read("lamp")  # fill the cache that status shows
    read = await run(service, "read", DAVE, {"device": "weather"})
    assert read["notes"] == [("info", "Weather: temperature 21.5 °C (just now)")]
    status = await service.table["status"].start(JID(DAVE), {"from": JID(DAVE)})
    assert status["notes"] == [
        ("info", "2 devices:\n- weather (Weather): temperature 21.5 °C\n- lamp (Lamp): state off")
    ]
    full = await run(service, "read", CAROL, {"device": "weather"})
    assert full["notes"] == [("info", "Weather (just now):\n- temperature 21.5 °C\n- humidity 45%")]
