"""The publisher in one process against a real Prosody: coalescing, refusals, retries.

A burst of changes much faster than the server acknowledges becomes at most
one publish in flight per device plus the newest pending values (never a
queue), and the item ends with the last value.  A service that refuses is
one log line, retried with backoff, while the hub goes on.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from accounts import ACCOUNTS
from pubsub_client import fields_of, items
from slixmpp import ClientXMPP
from xmpp_client import TestClient, connect_client

from hubd.core.access import AccessPolicy
from hubd.core.config import Config, load_config
from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType, FieldValue, NodeSpec, NodeState, Value
from hubd.core.node import Node
from hubd.testing.drivers import make_context
from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.pubsub import PIPELINE, PubSubPublisher

NODE = "urn:xmpp:iot:sensordata"
LEVEL = FieldSpec(name="level", type=FieldType.NUMERIC, unit="%")


class Dial(Driver[DriverConfig]):
    """One numeric field, set by the test through the hub."""

    kind = "test.dial"
    config_model = DriverConfig

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=(LEVEL,))

    async def start(self) -> None:
        """Nothing to open."""

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        return []

    async def write(self, field: str, value: Value) -> None:
        """Read-only."""

    async def stop(self) -> None:
        """Nothing to close."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodyServer]:
    made = ProsodyServer(tmp_path_factory.mktemp("prosody-pubsub"), pubsub=True)
    for user, password in ACCOUNTS.items():
        made.register(user, password)
    with made:
        yield made


def _config(tmp_path: Path, server: ProsodyServer, service: str) -> Config:
    (tmp_path / "pw").write_text("hubpass\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid("hub")}, password_file: pw}}
            access: {{owners: [{server.jid("alice")}], readers: [{server.jid("bob")}]}}
            gpio: {{pin_factory: mock}}
            devices:
              - {{id: dial, driver: gpio.pwm, pin: 18}}
            pubsub: {{service: {service}}}
            """
        )
    )
    return load_config(path, environ={})


class Scene:
    def __init__(self, server: ProsodyServer, config: Config, account: str = "hub") -> None:
        ctx, _ = make_context("dial")
        driver = Dial(DriverConfig(id="dial", driver="test.dial"), ctx)
        self.node = Node.create(driver.config, driver)
        self.hub = Hub([self.node])
        self.xmpp = ClientXMPP(f"{server.jid(account)}/pubsub-test", ACCOUNTS[account])
        self.xmpp.ca_certs = server.ca_file
        self.xmpp.enable_direct_tls = False
        for plugin in ("xep_0030", "xep_0199"):
            self.xmpp.register_plugin(plugin)
        access = AccessPolicy.from_config(config)
        self.publisher = PubSubPublisher(self.xmpp, self.hub, access, config)
        self.publishes = 0
        self.answered = 0
        self.most_in_flight = 0
        self.xmpp.add_filter("out", self._count)
        self.xmpp.add_filter("in", self._count_answers)

    def _count(self, stanza: Any) -> Any:
        if stanza.xml.find(".//{http://jabber.org/protocol/pubsub}publish") is not None:
            self.publishes += 1
            self.most_in_flight = max(self.most_in_flight, self.publishes - self.answered)
        return stanza

    def _count_answers(self, stanza: Any) -> Any:
        if stanza.xml.find(".//{http://jabber.org/protocol/pubsub}publish") is not None:
            self.answered += 1  # results (and errors) of publishes echo <publish node>
        return stanza

    def set(self, level: int) -> None:
        value = Decimal(level) / 10
        self.hub.ingest("dial", [FieldValue("level", value, datetime.now(UTC))])

    async def until(self, condition: Any, timeout: float = 10) -> None:  # noqa: ASYNC109
        # The publisher's own state is the condition; it has no event to wait on.
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    async def settled(self) -> None:
        publisher = self.publisher
        await self.until(lambda: not publisher._in_flight and not publisher._dirty)


@pytest.fixture
async def scene(server: ProsodyServer, tmp_path: Path) -> AsyncIterator[Scene]:
    made = Scene(server, _config(tmp_path, server, "pubsub.localhost"))
    made.hub.set_state("dial", NodeState.ONLINE)
    made.xmpp.connect(host=server.host, port=server.port)
    yield made
    await made.publisher.close()
    made.xmpp.disconnect()
    await made.xmpp.wait_until("disconnected", 5)


@pytest.fixture
async def bob(server: ProsodyServer) -> AsyncIterator[TestClient]:
    client = await connect_client(server, "bob", ACCOUNTS["bob"])
    yield client
    await client.disconnect_and_wait()


async def test_a_burst_is_coalesced_to_the_newest_value(scene: Scene, bob: TestClient) -> None:
    await scene.until(lambda: scene.publisher._ready)
    scene.set(1)
    await scene.settled()
    before = scene.publishes
    for level in range(1, 1001):  # a thousand changes before the server can answer one
        scene.set(level)
    assert len(scene.publisher._in_flight) == 1  # one task per device, whatever the burst
    assert scene.publisher._dirty == {"dial"}  # the pending state: one flag per device
    await scene.settled()
    # One publish was in flight when the burst began, one more carries the newest values.
    assert scene.publishes - before <= 2
    found = await items(bob, "pubsub.localhost", NODE)
    assert fields_of(found["dial"])["level"]["value"] == "100"


async def test_publishes_in_flight_are_bounded_and_the_last_value_stays(
    scene: Scene, bob: TestClient
) -> None:
    await scene.until(lambda: scene.publisher._ready)
    await scene.settled()
    for step in range(300):  # changes while publishes are in flight, values going back and forth
        scene.set(step % 7)
        await asyncio.sleep(0)  # let the publisher send what it may
    scene.set(42)
    await scene.settled()
    assert scene.most_in_flight <= PIPELINE, scene.most_in_flight
    assert scene.publishes == scene.answered
    found = await items(bob, "pubsub.localhost", NODE)
    assert fields_of(found["dial"])["level"]["value"] == "4.2"


@pytest.mark.parametrize(
    ("service", "account", "condition"),
    [
        ("nowhere.localhost", "hub", "not-allowed"),  # no s2s on the test server
        # Only the component's admins create nodes on Prosody 0.12: carol is refused.
        ("pubsub.localhost", "carol", "forbidden"),
    ],
)
async def test_a_refusing_service_is_one_log_line_and_retried(
    server: ProsodyServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    service: str,
    account: str,
    condition: str,
) -> None:
    caplog.set_level(logging.INFO, "hubd.xmpp.pubsub")
    made = Scene(server, _config(tmp_path, server, service), account)
    made.hub.set_state("dial", NodeState.ONLINE)
    made.xmpp.connect(host=server.host, port=server.port)
    try:
        backoff = made.publisher._backoff
        await made.until(lambda: backoff.attempts >= 2, timeout=15)
        refusals = [r for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in refusals]
        assert "the rest of hubd runs, trying again in" in refusals[0].getMessage()
        assert refusals[0].levelno == logging.WARNING
        assert f": {condition}" in refusals[0].getMessage()
        # The hub itself goes on: values still arrive and are cached.
        made.set(7)
        assert made.node.cache["level"].value == Decimal("0.7")
    finally:
        await made.publisher.close()
        made.xmpp.disconnect()
        await made.xmpp.wait_until("disconnected", 5)
