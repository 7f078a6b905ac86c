"""Garbage typed at the chat command layer: always a short reply, never a crash or a write.

The words come from the command grammar mixed with noise (quotes, unbalanced
quotes, control characters, huge numbers, very long lines), so that both
nearly valid and absurd commands reach every command.  Readers and strangers
must never cause a write, whatever they type.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubd.core.access import AccessPolicy
from hubd.core.access_lists import DeviceAccess
from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType, FieldValue, NodeSpec, NodeState, Value
from hubd.core.node import Node
from hubd.people.commands import NOT_AUTHORISED, ChatCommands
from hubd.testing.drivers import make_context

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

OWNER = "alice@example.org/x"
READER = "bob@example.org/x"
NEIGHBOUR = "dave@example.net/x"  # controls "dimmer" only
STRANGER = "mallory@evil.example/x"

WORDS = [
    "help", "list", "read", "set", "watch", "unwatch", "watching", "porch", "porch-light",
    "dimmer", "Hall", "dimmer.level", "porch-light.state", "state", "level", "on", "off",
    "true", "0.5", "-1", "1e999", "NaN", "99999999999999999999", '"', "'", "\\", "!set", "?",
    "\x00", "\u202e", "\n", "", "x" * 300,
]  # fmt: skip
lines = st.one_of(
    st.just("set porch on"),
    st.lists(st.sampled_from(WORDS) | st.text(max_size=8), max_size=8).map(" ".join),
    st.text(max_size=200),
)


class Thing(Driver[DriverConfig]):
    kind = "fake.thing"
    config_model = DriverConfig

    def __init__(self, config: DriverConfig, ctx: object, fields: Sequence[FieldSpec]) -> None:
        super().__init__(config, ctx)  # type: ignore[arg-type]
        self.fields = tuple(fields)
        self.written: list[tuple[str, Value]] = []

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=self.fields)

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        return []

    async def write(self, field: str, value: Value) -> None:
        self.written.append((field, value))


STATE = FieldSpec(name="state", type=FieldType.BOOLEAN, writable=True)
LEVEL = FieldSpec(
    name="level", type=FieldType.NUMERIC, writable=True, minimum=Decimal(0), maximum=Decimal(1)
)


async def _run(sender: str, line: str) -> tuple[str, list[tuple[str, Value]]]:
    drivers = []
    nodes = []
    for node_id, name, spec in (("porch-light", "Porch light", STATE), ("dimmer", "Hall", LEVEL)):
        ctx, _ = make_context(node_id)
        config = DriverConfig(id=node_id, name=name, driver="fake.thing")
        driver = Thing(config, ctx, [spec])
        drivers.append(driver)
        nodes.append(Node.create(config, driver))
    hub = Hub(nodes)
    for node in nodes:
        hub.set_state(node.id, NodeState.ONLINE)
    access = AccessPolicy(
        owners=["alice@example.org"],
        readers=["bob@example.org"],
        devices={"dimmer": DeviceAccess(controllers=("dave@example.net",))},
    )
    reply = await ChatCommands(hub, access, timeout=5).handle(sender, line)
    return reply, [(d.config.id, *w) for d in drivers for w in d.written]  # type: ignore[misc]


@FUZZ
@given(st.sampled_from([OWNER, READER, NEIGHBOUR, STRANGER, "example.org"]), lines)
def test_any_line_gets_a_short_reply_and_only_allowed_writes(sender: str, line: str) -> None:
    reply, written = asyncio.run(_run(sender, line))
    assert isinstance(reply, str)
    assert reply
    assert len(reply) < 2000  # a reply for a phone screen, whatever was typed
    if sender in (STRANGER, "example.org"):
        assert reply == NOT_AUTHORISED
    if sender in (READER, STRANGER, "example.org"):
        assert written == []
    if sender == OWNER and line.strip() == "set porch on":
        assert written == [("porch-light", "state", True)]
    if sender == NEIGHBOUR:
        assert all(node_id == "dimmer" for node_id, *_ in written)
        assert "Porch light" not in reply  # the name of a device dave may not see
