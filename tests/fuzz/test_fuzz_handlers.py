"""Hostile requests fed straight to the pure request handlers: no crash, no growth.

Every handler that reads a stanza payload gets random trees (wrong types,
huge numbers, unknown elements and namespaces, deep nesting) from each kind
of requester.  A handler may refuse (with a hubd error that maps to an XMPP
condition) but never raise anything else, never answer a stranger with more
than ``forbidden``, and never keep state for a request it refused.

The budget is bounded and the examples derandomized, so CI time is fixed and
a failure reproduces.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

from hostile_trees import element_trees
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hubd.core.access import AccessPolicy, Role
from hubd.core.access_lists import DeviceAccess
from hubd.core.driver import Driver, DriverConfig
from hubd.core.hub import Hub
from hubd.core.limits import LimitSettings, PolicyViolation, check_payload, measure
from hubd.core.model import FieldSpec, FieldType, FieldValue, NodeSpec, NodeState
from hubd.core.node import Node
from hubd.errors import HubdError
from hubd.testing.drivers import make_context
from hubd.xmpp.concentrator import Concentrator
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.control_xml import NS_CONTROL, parse_get_form, parse_set
from hubd.xmpp.errors import condition_for
from hubd.xmpp.events import NS_EVENTS, parse_subscribe

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

OWNER = "alice@example.org/x"
READER = "bob@example.org/x"
NEIGHBOUR = "dave@example.net/x"  # may read node2 only
STRANGER = "mallory@evil.example/x"
REQUESTERS = st.sampled_from([OWNER, READER, NEIGHBOUR, STRANGER, "example.org", "", "@/"])

_CONCENTRATOR_NAMES = [
    "getCapabilities", "getAllDataSources", "getRootDataSources", "getChildDataSources",
    "containsNode", "containsNodes", "getNode", "getNodes", "getAllNodes",
    "getNodeInheritance", "getRootNodes", "getChildNodes", "getAncestors",
    "getNodeParametersForEdit", "getNodeCommands", "subscribe", "unsubscribe",
    "node", "onlyIfDerivedFrom", "value", "destroyNode", "x",
]  # fmt: skip


class Thing(Driver[DriverConfig]):
    kind = "fake.thing"
    config_model = DriverConfig

    def describe(self) -> NodeSpec:
        return NodeSpec(fields=(FieldSpec(name="level", type=FieldType.INT, writable=True),))

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        return []


def _concentrator() -> Concentrator:
    # make_context wants a running loop (for publish_threadsafe); the handler itself is sync.
    return asyncio.run(_build())


async def _build() -> Concentrator:
    nodes = []
    for node_id, kind in (("node1", "gpio.output"), ("node2", "serial.lines")):
        ctx, _ = make_context(node_id)
        config = DriverConfig(id=node_id, name=node_id.title(), driver=kind)
        nodes.append(Node.create(config, Thing(config, ctx)))
    hub = Hub(nodes)
    hub.set_state("node1", NodeState.ONLINE)
    hub.set_state("node2", NodeState.OFFLINE, "gone")
    access = AccessPolicy(
        owners=["alice@example.org"],
        readers=["bob@example.org"],
        devices={"node2": DeviceAccess(readers=("dave@example.net",))},
        # Generous: these tests are about shapes, test_limits.py about rates.
        limits=LimitSettings(burst=10_000, requests_per_minute=60_000),
    )
    return Concentrator(hub, access)


def _command(name: str) -> st.SearchStrategy[Element]:
    return element_trees(
        f"{{{NS_CONCENTRATORS}}}{name}", _CONCENTRATOR_NAMES, [NS_CONCENTRATORS, "", "urn:x"]
    )


@FUZZ
@given(st.sampled_from(_CONCENTRATOR_NAMES).flatmap(_command), REQUESTERS)
def test_concentrator_answers_every_request_and_strangers_learn_nothing(
    request: Element, requester: str
) -> None:
    concentrator = _concentrator()
    answer = concentrator.handle(requester, request)
    if concentrator.access.best_role(requester) is Role.STRANGER:
        assert answer.error is not None
        assert (answer.error.type, answer.error.condition) == ("cancel", "forbidden")
        assert answer.payload.get("result") == "InsufficientPrivileges"
        assert len(answer.payload) == 0
        assert not answer.payload.text
        assert not concentrator._subscriptions
    if answer.error is None:
        # Whatever a requester asked, it never sees a node it may not read.
        shown = {e.get("nodeId") for e in answer.payload.iter() if e.get("nodeId")}
        visible = {n.id for n in concentrator.access.visible(requester, concentrator.hub.nodes)}
        assert shown <= visible


@FUZZ
@given(
    element_trees(
        f"{{{NS_EVENTS}}}subscribe",
        ["node", "field", "subscribe", "x"],
        [NS_EVENTS, "", "urn:xmpp:iot:sensordata"],
    )
)
def test_subscribe_parser_only_refuses_with_hubd_errors(request: Element) -> None:
    try:
        seqnr, nodes, options = parse_subscribe(request)
    except HubdError as err:
        refused = condition_for(err).condition
    else:
        refused = None
    if refused is not None:
        assert refused == "bad-request"
        return
    assert isinstance(seqnr, int)
    assert all(ref.node_id for ref in nodes)
    assert set(options) >= {"rules", "categories", "min_interval", "max_interval"}


@FUZZ
@given(
    element_trees(
        f"{{{NS_CONTROL}}}getForm", ["node", "getForm", "x"], [NS_CONTROL, "", "urn:other"]
    )
)
def test_get_form_parser_only_refuses_with_hubd_errors(request: Element) -> None:
    refused = None
    try:
        parse_get_form(request)
    except HubdError as err:
        refused = condition_for(err).condition
    assert refused in (None, "bad-request", "item-not-found")


@FUZZ
@given(
    st.recursive(
        st.builds(Element, st.sampled_from(["a", "{urn:x}b", "node"])),
        lambda kids: st.builds(
            lambda tag, children: _with(Element(tag), children),
            st.sampled_from(["a", "{urn:x}b", "set"]),
            st.lists(kids, max_size=5),
        ),
        max_leaves=60,
    ),
    st.integers(1, 40),
    st.integers(3, 12),
)
def test_size_check_refuses_only_with_policy_violation(
    tree: Element, max_elements: int, max_depth: int
) -> None:
    settings_ = LimitSettings(
        max_request_elements=max(max_elements, 8), max_request_depth=max_depth
    )
    shape = measure(tree)
    try:
        check_payload(tree, settings_)
    except PolicyViolation:
        assert (
            shape.elements > settings_.max_request_elements
            or shape.depth > settings_.max_request_depth
        )
    else:
        assert shape.elements <= settings_.max_request_elements
        assert shape.depth <= settings_.max_request_depth


def _with(parent: Element, children: list[Element]) -> Element:
    parent.extend(children)
    return parent


def test_huge_and_deep_requests_are_refused_before_parsing() -> None:
    """What hypothesis' small trees cannot reach: 10⁵ elements, depth 10⁴, 1 MB values."""
    limits = LimitSettings()
    wide = Element(f"{{{NS_CONTROL}}}set")
    for index in range(100_000):
        SubElement(wide, f"{{{NS_CONTROL}}}node", {"nodeId": f"n{index}"})
    deep = current = Element(f"{{{NS_CONTROL}}}set")
    for _ in range(10_000):
        current = SubElement(current, f"{{{NS_CONTROL}}}node")
    huge = Element(f"{{{NS_CONTROL}}}set", {"x": "v" * 1_000_000})
    for element in (wide, deep, huge):
        try:
            check_payload(element, limits)
        except PolicyViolation:
            continue
        raise AssertionError("not refused")
    # parse_set itself survives them too (no recursion on depth).
    for element in (wide, deep, huge):
        with contextlib.suppress(HubdError):
            parse_set(element)
