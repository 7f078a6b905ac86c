"""Chat commands (hubd.people.commands): parsing, lookups, replies, errors; a fake hub, no XMPP."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hubd.core.access import AccessPolicy, Role
from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import (
    Category,
    FieldSpec,
    FieldType,
    FieldValue,
    NodeSpec,
    NodeState,
    Value,
)
from hubd.core.node import Node
from hubd.errors import DriverUnavailable
from hubd.people.command import Command, Invocation
from hubd.people.commands import NOT_AUTHORISED, ChatCommands
from hubd.people.wording import ago, delayed_text, example_value, format_list, format_value
from hubd.testing.drivers import make_context

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ALICE = "alice@example.org/phone"  # owner
CAROL = "carol@example.org/laptop"  # controller
BOB = "bob@example.org/phone"  # reader
MALLORY = "mallory@evil.example/x"  # stranger

STATE_RW = FieldSpec(name="state", type=FieldType.BOOLEAN, writable=True)
STATE_RO = FieldSpec(name="state", type=FieldType.BOOLEAN)
LEVEL = FieldSpec(
    name="level", type=FieldType.NUMERIC, writable=True, minimum=Decimal(0), maximum=Decimal(1)
)
TEMPERATURE = FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C")
HUMIDITY = FieldSpec(name="humidity", type=FieldType.NUMERIC, unit="%")


class FakeDriver(Driver[DriverConfig]):
    """Fields and values as each test sets them; reads and writes are recorded."""

    kind = "fake.thing"
    config_model = DriverConfig

    def __init__(self, config: DriverConfig, ctx: object, fields: Sequence[FieldSpec]) -> None:
        super().__init__(config, ctx)  # type: ignore[arg-type]
        self.fields = tuple(fields)
        self.values: dict[str, tuple[Value, datetime]] = {}
        self.written: list[tuple[str, Value]] = []
        self.asked: list[frozenset[str]] = []  # the fields each read asked for
        self.hang = False

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=self.fields)

    async def start(self) -> None:
        pass

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        self.asked.append(fields)
        if self.hang:
            await asyncio.Event().wait()
        return [
            FieldValue(name, value, stamp)
            for name, (value, stamp) in self.values.items()
            if not fields or name in fields
        ]

    async def write(self, field: str, value: Value) -> None:
        self.written.append((field, value))
        self.values[field] = (value, NOW)

    async def stop(self) -> None:
        pass


async def make_commands() -> tuple[ChatCommands, dict[str, FakeDriver]]:
    drivers: dict[str, FakeDriver] = {}
    nodes = []
    for node_id, name, fields in (
        ("porch-light", "Porch light", [STATE_RW]),
        ("front-door", None, [STATE_RO]),
        ("dimmer", "Hall dimmer", [LEVEL]),
        ("weather", "Weather", [TEMPERATURE, HUMIDITY]),
    ):
        ctx, _ = make_context(node_id)
        config = DriverConfig(id=node_id, name=name, driver="fake.thing")
        driver = FakeDriver(config, ctx, fields)
        drivers[node_id] = driver
        nodes.append(Node.create(config, driver))
    hub = Hub(nodes, now=lambda: NOW)
    for node in nodes:
        hub.set_state(node.id, NodeState.ONLINE)
    drivers["porch-light"].values["state"] = (False, NOW - timedelta(minutes=2))
    drivers["front-door"].values["state"] = (True, NOW - timedelta(hours=3))
    drivers["dimmer"].values["level"] = (Decimal("0.50"), NOW)
    drivers["weather"].values["temperature"] = (Decimal("21.5"), NOW - timedelta(seconds=5))
    drivers["weather"].values["humidity"] = (Decimal("45"), NOW - timedelta(minutes=3))
    access = AccessPolicy(
        owners=["alice@example.org"], controllers=["carol@example.org"], readers=["bob@example.org"]
    )
    return ChatCommands(hub, access, now=lambda: NOW, timeout=0.5), drivers


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-5), "just now"),
        (timedelta(seconds=3), "just now"),
        (timedelta(seconds=42), "42 s ago"),
        (timedelta(minutes=2, seconds=59), "2 min ago"),
        (timedelta(hours=5, minutes=1), "5 h ago"),
        (timedelta(days=1, hours=2), "1 day ago"),
        (timedelta(days=9), "9 days ago"),
    ],
)
def test_ago(delta: timedelta, text: str) -> None:
    assert ago(NOW - delta, NOW) == text


def test_values_keep_decimals_and_units() -> None:
    assert format_value(TEMPERATURE, Decimal("21.50")) == "21.50 °C"
    assert format_value(HUMIDITY, Decimal("45")) == "45%"
    assert format_value(TEMPERATURE, Decimal("1E+1")) == "10 °C"
    assert format_value(STATE_RW, True) == "on"
    assert format_value(None, False) == "off"
    assert format_value(None, timedelta(hours=26, minutes=3)) == "1 d 2 h"
    assert format_value(None, "x" * 500).endswith("…")
    assert example_value(LEVEL) == "0.5"
    assert example_value(STATE_RW) == "on"


def test_delayed_text_says_when() -> None:
    text = delayed_text("Front door: state on", NOW - timedelta(hours=2), NOW)
    assert text == "Front door: state on (delayed: happened 2 h ago, at 10:00 UTC)"


async def test_help_shows_only_what_the_sender_may_use() -> None:
    commands, _ = await make_commands()
    owner = await commands.handle(ALICE, "help")
    reader = await commands.handle(BOB, "HELP")
    assert "set <device> <field> <value>" in owner
    assert "read <device> [<field>]" in reader
    assert "set " not in reader
    assert await commands.handle(MALLORY, "help") == NOT_AUTHORISED
    assert "Try: set porch-light state on" in await commands.handle(CAROL, "help set")


async def test_strangers_learn_nothing() -> None:
    commands, drivers = await make_commands()
    for line in ("list", "read porch-light", "read attic", "set porch-light on", "xyzzy"):
        assert await commands.handle(MALLORY, line) == NOT_AUTHORISED
    assert drivers["porch-light"].written == []


async def test_list_shows_every_device_in_one_line_each() -> None:
    commands, _drivers = await make_commands()
    await commands.hub.read("weather")  # fills the cache, as drivers publishing do
    await commands.hub.read("porch-light")
    commands.hub.set_state("front-door", NodeState.OFFLINE, "GPIO27 cannot be opened")
    reply = await commands.handle(BOB, "list")
    assert reply.splitlines() == [
        "4 devices, 1 offline:",
        "- porch-light (Porch light): state off",
        "- front-door: offline (GPIO27 cannot be opened)",
        "- dimmer (Hall dimmer): no values yet",
        "- weather (Weather): temperature 21.5 °C · humidity 45%",
    ]


async def test_list_leaves_out_status_fields_with_nothing_to_report() -> None:
    errors = FieldSpec(name="errors", type=FieldType.LONG, categories=frozenset({Category.STATUS}))
    last = FieldSpec(name="last_error", type=FieldType.STRING, categories=errors.categories)
    ctx, _ = make_context("meter")
    config = DriverConfig(id="meter", driver="fake.thing")
    driver = FakeDriver(config, ctx, [TEMPERATURE, errors, last])
    node = Node.create(config, driver)
    hub = Hub([node], now=lambda: NOW)
    hub.set_state("meter", NodeState.ONLINE)
    driver.values.update(temperature=(Decimal("4.5"), NOW), errors=(0, NOW), last_error=("", NOW))
    await hub.read("meter")
    assert format_list([node]).splitlines()[1] == "- meter: temperature 4.5 °C"
    driver.values.update(errors=(3, NOW), last_error=("bad CRC", NOW))
    await hub.read("meter")
    assert format_list([node]).splitlines()[1] == (
        "- meter: temperature 4.5 °C · errors 3 · last_error bad CRC"
    )
    read = ChatCommands(hub, AccessPolicy(readers=["bob@example.org"]), now=lambda: NOW)
    assert "errors 3" in await read.handle(BOB, "read meter"), "read shows every field"


async def test_read_one_field_device_is_one_line_with_age() -> None:
    commands, _ = await make_commands()
    assert await commands.handle(BOB, "read porch-light") == "Porch light: state off (2 min ago)"
    # Forgiving: any case, the name instead of the id, a unique beginning.
    assert await commands.handle(BOB, "Read PORCH LIGHT") == "Porch light: state off (2 min ago)"
    assert await commands.handle(BOB, "read porch") == "Porch light: state off (2 min ago)"
    assert await commands.handle(BOB, "read hall") == "Hall dimmer: level 0.50 (just now)"


async def test_read_many_fields_and_one_field() -> None:
    commands, _ = await make_commands()
    reply = await commands.handle(BOB, "read weather")
    assert reply.splitlines() == [
        "Weather (just now):",
        "- temperature 21.5 °C",
        "- humidity 45% (3 min ago)",
    ]
    assert await commands.handle(BOB, "read weather hum") == "Weather: humidity 45% (3 min ago)"
    assert await commands.handle(BOB, "read weather.temperature") == (
        "Weather: temperature 21.5 °C (just now)"
    )
    assert await commands.handle(BOB, "read porch-light online") == (
        "Porch light: online on (just now)"
    )


async def test_read_errors_say_what_to_type() -> None:
    commands, _ = await make_commands()
    assert await commands.handle(BOB, "read") == "Read which device? Try: read porch-light"
    unknown = await commands.handle(BOB, "read attic")
    assert unknown.startswith("No device 'attic'. Devices: porch-light, front-door, dimmer")
    assert "Type list" in unknown
    assert await commands.handle(BOB, "read weather colour") == (
        "weather has no field 'colour'; fields: temperature, humidity, online."
    )
    ctx, _ = make_context("front-gate")
    gate = DriverConfig(id="front-gate", driver="fake.thing")
    commands.hub.nodes["front-gate"] = Node.create(gate, FakeDriver(gate, ctx, [STATE_RW]))
    assert await commands.handle(BOB, "read front") == (
        "'front' could be front-door, front-gate. Type more of the name."
    )


async def test_read_of_offline_or_silent_device_gives_last_known_values() -> None:
    commands, drivers = await make_commands()
    await commands.hub.read("porch-light")
    commands.hub.set_state("porch-light", NodeState.OFFLINE, "GPIO17 cannot be opened")
    assert await commands.handle(BOB, "read porch-light") == (
        "Porch light is offline (GPIO17 cannot be opened). Last known: state off (2 min ago)."
    )
    drivers["weather"].hang = True
    drivers["weather"].read_timeout = 0.01
    reply = await commands.handle(BOB, "read weather")
    assert reply.startswith("Weather did not answer: weather: no answer within 0.01 s.")


async def test_set_carries_out_through_the_hub_and_audits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    commands, drivers = await make_commands()
    caplog.set_level("INFO", logger="hubd.audit")
    assert await commands.handle(CAROL, "set porch-light state on") == "Porch light: state on"
    assert await commands.handle(ALICE, "SET Porch Light state OFF") == "Porch light: state off"
    assert await commands.handle(ALICE, "set porch-light on") == "Porch light: state on"
    assert await commands.handle(ALICE, "set porch-light.state false") == "Porch light: state off"
    assert await commands.handle(ALICE, "set dimmer level 0.25") == "Hall dimmer: level 0.25"
    assert await commands.handle(ALICE, "set hall 1") == "Hall dimmer: level 1"
    assert drivers["porch-light"].written == [
        ("state", True),
        ("state", False),
        ("state", True),
        ("state", False),
    ]
    assert "control by carol@example.org/laptop: porch-light.state = True done" in caplog.text


async def test_set_errors_say_what_to_type() -> None:
    commands, drivers = await make_commands()
    assert await commands.handle(ALICE, "set porch-light colour red") == (
        "porch-light has no field 'colour'; fields: state. Try: set porch-light state on"
    )
    assert await commands.handle(ALICE, "set porch-light state maybe") == (
        "Cannot set porch-light state to 'maybe': expected on/off (true/false), got 'maybe'. "
        "Try: set porch-light state on"
    )
    assert await commands.handle(ALICE, "set dimmer level 7") == (
        "Cannot set dimmer level to '7': 7 is above the maximum 1. Try: set dimmer level 0.5"
    )
    assert await commands.handle(ALICE, "set front-door state on") == (
        "front-door state is read-only (it has nothing to set). Try: read front-door"
    )
    assert await commands.handle(ALICE, "set porch-light state") == (
        "Set porch-light state to what? Try: set porch-light state on"
    )
    assert await commands.handle(ALICE, "set porch-light") == (
        "Set what? Try: set porch-light state on"
    )
    assert (await commands.handle(ALICE, "set attic on")).startswith("No device 'attic'")
    commands.hub.set_state("porch-light", NodeState.OFFLINE, "GPIO17 cannot be opened")
    assert await commands.handle(ALICE, "set porch-light on") == (
        "Porch light is offline (GPIO17 cannot be opened); not changed."
    )
    assert drivers["porch-light"].written == []


async def test_set_needs_control_rights() -> None:
    commands, drivers = await make_commands()
    assert await commands.handle(BOB, "set porch-light state on") == (
        "set needs control rights; you may read. Type help for your commands."
    )
    assert drivers["porch-light"].written == []


async def test_a_stale_control_is_not_carried_out() -> None:
    commands, drivers = await make_commands()
    sent = NOW - timedelta(minutes=30)
    reply = await commands.handle(ALICE, "set porch-light on", sent_at=sent)
    assert reply == "Not done: you sent this at 11:30 UTC and it arrived only now. Send it again."
    assert drivers["porch-light"].written == []
    # Reads are harmless: answered even when late.
    assert "state off" in await commands.handle(ALICE, "read porch-light", sent_at=sent)
    recent = NOW - timedelta(seconds=20)
    assert await commands.handle(ALICE, "set porch-light on", sent_at=recent) == (
        "Porch light: state on"
    )


async def test_unknown_commands_hint_at_help() -> None:
    commands, _ = await make_commands()
    assert await commands.handle(BOB, "hello") == (
        "Unknown command 'hello'. Type help for the commands."
    )
    assert await commands.handle(BOB, "porch-light") == (
        "Unknown command 'porch-light'. Did you mean: read porch-light"
    )
    assert await commands.handle(BOB, "   ") == "Type help for the commands."
    assert "Commands:" in await commands.handle(BOB, "Help?")


async def test_watch_exists_only_with_an_event_engine() -> None:
    # The watch commands are registered by their owner (hubd.people.watch) when
    # the hub has events; there are no placeholders to stand in for them.
    commands, _ = await make_commands()
    assert await commands.handle(BOB, "watch front-door") == (
        "Unknown command 'watch'. Type help for the commands."
    )
    assert "watching" not in await commands.handle(BOB, "help")
    assert [c.name for c in commands.available(Role.OWNER)] == ["help", "list", "read", "set"]


async def test_commands_are_a_table_others_can_extend() -> None:
    commands, _ = await make_commands()

    async def watching(call: Invocation) -> str:
        return f"{call.sender} watches nothing"

    commands.register(
        Command(name="watching", usage="watching", summary="s", role=Role.READER, run=watching)
    )
    assert await commands.handle(BOB, "watching") == f"{BOB} watches nothing"


async def test_a_hanging_command_is_abandoned() -> None:
    commands, drivers = await make_commands()
    drivers["weather"].hang = True
    drivers["weather"].read_timeout = 60
    assert await commands.handle(BOB, "read weather") == "No answer within 0.5 s; read abandoned."


async def test_errors_of_the_hub_never_escape() -> None:
    commands, _ = await make_commands()

    async def broken(call: Invocation) -> str:
        raise DriverUnavailable("unplugged")

    commands.register(Command(name="x", usage="x", summary="s", role=Role.READER, run=broken))
    assert await commands.handle(BOB, "x") == "Could not x: unplugged"
