"""Hostile stanzas at a running hubd: refused with the right condition, and the hub stays well.

A real hubd with tight limits, a real Prosody, raw XML from plain slixmpp
clients.  Each attack is followed by a normal readout: the hub must still
answer, on the same session (its log says it never reconnected).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring
from hubd_process import HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, field_values, iq, readout
from slixmpp import JID
from slixmpp.exceptions import IqError
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

EVENTS = "urn:xmpp:iot:events"
HUB = "hub@localhost/hubd"
LIMITS = """
limits:
  burst: 40
  requests_per_minute: 60
  max_subscriptions: 1
  max_readouts: 3
"""


@pytest.fixture
async def hub(prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(tmp_path / "hubd", prosody, extra_config=LIMITS).running() as process:
        yield process


async def still_answers(client: TestClient, hub: HubdProcess, seqnr: int) -> None:
    """A normal readout works, and hubd never dropped its session."""
    _, payloads = await readout(
        client, HUB, f"<req xmlns='{SD}' seqnr='{seqnr}'><node nodeId='porch-light'/></req>"
    )
    assert field_values(payloads[0])["porch-light"]["state"] in ("true", "false")
    assert hub.log().count("connected to ") == 1, hub.log()
    assert "Traceback" not in hub.log(), hub.log()


def _condition(failure: IqFailure) -> tuple[str, str]:
    return failure.type, failure.condition


async def condition(client: TestClient, xml: str, kind: str = "get") -> tuple[str, str]:
    answer = await iq(client, HUB, xml, kind)
    assert isinstance(answer, IqFailure), f"accepted: {answer}"
    return _condition(answer)


async def raw_iq(client: TestClient, body: str, kind: str = "get") -> tuple[str, str]:
    """Send ``body`` (XML text, parsed by the server only) in an IQ; return its error."""
    stanza = client.make_iq(ito=JID(HUB), itype=kind)
    stanza.xml.append(fromstring(body))
    with pytest.raises(IqError) as caught:
        await stanza.send(timeout=10)
    error = caught.value.iq["error"]
    return error["type"], error["condition"]


POLICY = ("modify", "not-acceptable")


async def test_oversized_deep_and_malformed_requests(
    hub: HubdProcess, alice: TestClient, carol: TestClient
) -> None:
    deep = "<node>" * 300 + "</node>" * 300
    huge = "x" * 100_000
    many = "".join(f"<node nodeId='n{i}'/>" for i in range(2000))
    for xml in (
        f"<req xmlns='{SD}' seqnr='1'>{deep}</req>",
        f"<req xmlns='{SD}' seqnr='1'><node nodeId='{huge}'/></req>",
        f"<req xmlns='{SD}' seqnr='1'>{many}</req>",
        f"<getNodes xmlns='{CONC}'>{many}</getNodes>",
        f"<subscribe xmlns='{EVENTS}' seqnr='1'>{deep}</subscribe>",
    ):
        assert await condition(alice, xml) == POLICY
    assert await condition(carol, f"<set xmlns='{CTRL}'>{many}</set>", "set") == POLICY
    # Wrong types and absurd values: bad-request, never a crash.
    for xml in (
        f"<req xmlns='{SD}' seqnr='99999999999999999999999999' momentary='true'/>",
        f"<req xmlns='{SD}' seqnr='1' momentary='perhaps'/>",
        f"<req xmlns='{SD}' seqnr='1' from='9999-99-99T99:99:99Z'/>",
        f"<req xmlns='{SD}' seqnr='1' when='9999-12-31T23:59:59-23:59'/>",
        f"<subscribe xmlns='{EVENTS}' seqnr='2' maxInterval='P99999999999Y'/>",
        f"<subscribe xmlns='{EVENTS}' seqnr='2'><field name='x' changedBy='-1e999'/></subscribe>",
    ):
        kind, name = await condition(alice, xml)
        assert name == "bad-request", (xml, kind, name)
    setter = (
        f"<set xmlns='{CTRL}'><node nodeId='porch-light'/>"
        f"<double name='state' value='1e99999'/></set>"
    )
    assert (await condition(carol, setter, "set"))[1] == "bad-request"
    # Unknown namespaces and elements: slixmpp's standard answer.
    assert await raw_iq(alice, "<evil xmlns='urn:evil'><a><b/></a></evil>") == (
        "cancel",
        "feature-not-implemented",
    )
    await still_answers(alice, hub, 10)


async def test_entity_expansion_never_reaches_the_hub(
    hub: HubdProcess, prosody: ProsodyServer, alice: TestClient
) -> None:
    """A DTD is not allowed in XMPP: the server ends the sender's stream, hubd sees nothing."""
    attacker = await connect_client(prosody, "mallory", "mallorypass")
    gone = attacker.wait_until("disconnected", timeout=10)
    attacker.send_raw(
        "<!DOCTYPE lol [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;&lol;'>]>"
        f"<message to='{HUB}'><body>&lol2;</body></message>"
    )
    await gone
    await attacker.disconnect_and_wait()
    # Escaped text that merely looks like an entity is just text.
    attacker = await connect_client(prosody, "mallory", "mallorypass")
    try:
        answer = await iq(attacker, HUB, f"<req xmlns='{SD}' seqnr='1' momentary='&amp;lol;'/>")
        assert isinstance(answer, IqFailure)
        assert answer.condition == "forbidden"
    finally:
        await attacker.disconnect_and_wait()
    await still_answers(alice, hub, 11)


async def test_rate_subscription_and_readout_limits(
    hub: HubdProcess, alice: TestClient, bob: TestClient
) -> None:
    # One subscription per account here: a second node is a policy violation.
    one = await iq(
        bob, HUB, f"<subscribe xmlns='{EVENTS}' seqnr='1'><node nodeId='porch-light'/></subscribe>"
    )
    assert isinstance(one, Element)
    again = await iq(
        bob, HUB, f"<subscribe xmlns='{EVENTS}' seqnr='2'><node nodeId='porch-light'/></subscribe>"
    )
    assert isinstance(again, Element), "replacing the same node's subscription is fine"
    assert (
        await condition(
            bob, f"<subscribe xmlns='{EVENTS}' seqnr='3'><node nodeId='front-door'/></subscribe>"
        )
        == POLICY
    )
    # Readouts scheduled for later count as in progress: the fourth is refused.
    later = (datetime.now(UTC) + timedelta(hours=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for seqnr in (21, 22, 23):
        accepted = await iq(bob, HUB, f"<req xmlns='{SD}' seqnr='{seqnr}' when='{later}'/>")
        assert isinstance(accepted, Element)
        assert accepted.tag == f"{{{SD}}}accepted"
        assert accepted.get("queued") == "true"
    when = "2000-01-01T00:00:00Z"  # the past: at once, but still one too many
    refused = await condition(bob, f"<req xmlns='{SD}' seqnr='24' when='{when}'/>")
    assert refused == ("wait", "resource-constraint")
    # Bob's flood: the bucket (40) runs dry and stays dry at one request a second.
    conditions = [(await iq(bob, HUB, f"<getCapabilities xmlns='{CONC}'/>")) for _ in range(45)]
    failures = [c for c in conditions if isinstance(c, IqFailure)]
    assert failures, "the rate limit never applied"
    assert {_condition(f) for f in failures} == {("wait", "resource-constraint")}
    # Others are not affected by bob's flood.
    await still_answers(alice, hub, 12)
