"""The client side of the machine interface: the requests hubctl sends, the answers it reads.

Pure: ElementTree in and out, no slixmpp, no I/O.  Requests are written with
the helpers the hub writes its own answers with (``sensordata_xml``,
``control_xml``), and ``<fields/>`` are read by ``sensordata_xml.parse_fields``,
so both ends of hubd agree on every attribute.

Liberal on input, as the hub is (digest §9), so that hubctl also works
against other concentrators: a readout ends with ``done='true'`` on a
``fields`` or ``failure`` message *or* with a standalone ``<done/>``; an IQ
result without ``<accepted/>`` counts as accepted; XEP-0326 answers without a
``result`` attribute count as ``OK``.

This module imports only the light wire modules: hubctl starts a fresh
process for every command, and the hub's own modules bring pydantic (a
quarter of a second to import), hence the two namespaces repeated below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.model import Category
from hubd.errors import BadRequest, HubRefused
from hubd.xmpp.control_xml import NS_CONTROL
from hubd.xmpp.sensordata_xml import (
    NS_SENSORDATA,
    NodeRef,
    local_name,
    node_ref_attrs,
    parse_bool_attr,
    parse_node_ref,
    parse_seqnr,
    qname,
    require,
)

#: = ``hubd.xmpp.events.NS_EVENTS`` (that module imports slixmpp and the event engine).
NS_EVENTS = "urn:xmpp:iot:events"
#: = ``hubd.xmpp.concentrator_xml.NS_CONCENTRATORS`` (that module imports the hub's model).
NS_CONCENTRATORS = "urn:xmpp:iot:concentrators"

#: What a plain ``read`` asks for: every category but the historical ones.
CURRENT = (
    Category.MOMENTARY,
    Category.PEAK,
    Category.STATUS,
    Category.COMPUTED,
    Category.IDENTITY,
)
HISTORICAL = frozenset(c for c in Category if c.value.startswith("historical"))

#: XEP-0326 result codes that mean the request was answered.
_OK = "OK"


# --- XEP-0323 readouts ------------------------------------------------------------


def build_req(
    seqnr: int,
    *,
    nodes: Sequence[str | NodeRef] = (),
    fields: Sequence[str] = (),
    categories: Iterable[Category] = CURRENT,
    historical: bool = False,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Element:
    """A ``<req/>`` for values of ``categories`` (by default every non-historical one).

    ``historical`` asks for every historical category (``historical='true'``)
    between ``start`` and ``end`` instead.  Nodes and fields empty: all of them.
    A node is a ``nodeId`` of the hub's own, or a :class:`NodeRef` (a remote's:
    ``sourceId`` and ``nodeId``).
    """
    attrs = {"seqnr": str(seqnr)}
    if historical:
        attrs["historical"] = "true"
    else:
        attrs.update((c.value, "true") for c in categories)
    if start is not None:
        attrs["from"] = xsd.format_datetime(start)
    if end is not None:
        attrs["to"] = xsd.format_datetime(end)
    req = Element(qname(NS_SENSORDATA, "req"), attrs)
    for node in nodes:
        SubElement(req, qname(NS_SENSORDATA, "node"), node_ref_attrs(_ref(node)))
    for name in fields:
        SubElement(req, qname(NS_SENSORDATA, "field"), {"name": name})
    return req


@dataclass(frozen=True, slots=True)
class ReadoutPart:
    """One message of a readout: ``fields``, ``failure``, ``started`` or ``done``."""

    kind: str
    seqnr: int
    done: bool
    element: Element


_PARTS = frozenset({"fields", "failure", "started", "done"})


def readout_part(elem: Element) -> ReadoutPart | None:
    """Classify a message payload; None when it is no readout message (or has a bad seqnr)."""
    kind = local_name(elem, NS_SENSORDATA)
    if kind not in _PARTS:
        return None
    try:
        seqnr = parse_seqnr(elem, kind)
        # A standalone <done/> ends the readout by itself (XEP-0323 §1.9).
        done = kind == "done" or parse_bool_attr(elem, "done", kind)
    except BadRequest:
        return None
    return ReadoutPart(kind, seqnr, done, elem)


@dataclass(frozen=True, slots=True)
class NodeFailure:
    """A node the hub could not read, and why."""

    node_id: str
    text: str
    source_id: str | None = None

    @property
    def ref(self) -> NodeRef:
        """The failed node as the wire addressed it."""
        return NodeRef(self.node_id, self.source_id)


def parse_failure(elem: Element) -> list[NodeFailure]:
    """The ``<error nodeId timestamp>text</error>`` children of a ``<failure/>``."""
    failures = []
    for child in elem:
        if local_name(child, NS_SENSORDATA) == "error":
            node = child.get("nodeId") or "?"
            text = (child.text or "").strip() or "failed"
            failures.append(NodeFailure(node, text, child.get("sourceId") or None))
    return failures


def accepted_queued(result: Element | None) -> bool:
    """Whether an IQ result's ``<accepted/>`` says the readout waits (absent: not queued)."""
    if result is None or local_name(result, NS_SENSORDATA) != "accepted":
        return False
    try:
        return parse_bool_attr(result, "queued", "accepted")
    except BadRequest:
        return False


def _ref(node: str | NodeRef) -> NodeRef:
    return node if isinstance(node, NodeRef) else NodeRef(node)


# --- XEP-0325 control ---------------------------------------------------------------


def build_set(node: str | NodeRef, element: str, name: str, lexical: str) -> Element:
    """``<set><node nodeId sourceId?/><ELEMENT name value/></set>``: one parameter of one node."""
    root = Element(qname(NS_CONTROL, "set"))
    SubElement(root, qname(NS_CONTROL, "node"), node_ref_attrs(_ref(node)))
    SubElement(root, qname(NS_CONTROL, element), {"name": name, "value": lexical})
    return root


# --- IoT events (ProtoXEP urn:xmpp:iot:events) ----------------------------------------


def build_subscribe(
    seqnr: int, node: str | NodeRef, field: str | None = None, changed_by: str | None = None
) -> Element:
    """``<subscribe seqnr><node/><field name changedBy?/></subscribe>``; no field: every field."""
    root = Element(qname(NS_EVENTS, "subscribe"), {"seqnr": str(seqnr)})
    SubElement(root, qname(NS_EVENTS, "node"), node_ref_attrs(_ref(node)))
    if field is not None:
        attrs = {"name": field}
        if changed_by is not None:
            attrs["changedBy"] = changed_by
        SubElement(root, qname(NS_EVENTS, "field"), attrs)
    return root


def build_unsubscribe(seqnr: int) -> Element:
    """``<unsubscribe seqnr/>``."""
    return Element(qname(NS_EVENTS, "unsubscribe"), {"seqnr": str(seqnr)})


# --- XEP-0326 browsing ----------------------------------------------------------------


def build_concentrator(command: str, **attrs: str) -> Element:
    """An XEP-0326 request element, e.g. ``getRootNodes sourceId='MeteringTopology'``."""
    return Element(qname(NS_CONCENTRATORS, command), attrs)


def check_result(response: Element | None, command: str) -> Element:
    """The ``<commandResponse/>`` of an answer, or HubRefused when its ``result`` is not OK."""
    if response is None or local_name(response, NS_CONCENTRATORS) != command + "Response":
        raise HubRefused("bad-answer", f"the hub answered {command} with something else")
    result = response.get("result", _OK)
    if result != _OK:
        errors = [e.text.strip() for e in response if e.text and e.text.strip()]
        raise HubRefused(result, "; ".join(errors))
    return response


@dataclass(frozen=True, slots=True)
class DataSource:
    """An XEP-0326 data source."""

    source_id: str
    name: str
    has_children: bool


@dataclass(frozen=True, slots=True)
class BrowsedNode:
    """An XEP-0326 node as a browse lists it."""

    node_id: str
    name: str
    node_type: str
    state: str
    has_children: bool
    readable: bool
    controllable: bool
    parent_id: str | None


def parse_data_sources(response: Element) -> list[DataSource]:
    """The ``<dataSource/>`` children of a data-source answer."""
    sources = []
    for child in _children(response, "dataSource"):
        source_id = require(child, "sourceId", "dataSource")
        sources.append(
            DataSource(
                source_id=source_id,
                name=child.get("name") or source_id,
                has_children=_flag(child, "hasChildren"),
            )
        )
    return sources


def parse_nodes(response: Element) -> list[BrowsedNode]:
    """The ``<node/>`` children of a node-list answer (getRootNodes, getChildNodes, ...)."""
    nodes = []
    for child in _children(response, "node"):
        node = parse_node_ref(child, "node")
        nodes.append(
            BrowsedNode(
                node_id=node.node_id,
                name=child.get("displayName") or node.node_id,
                node_type=child.get("nodeType") or "",
                state=child.get("state") or "None",
                has_children=_flag(child, "hasChildren"),
                readable=_flag(child, "isReadable"),
                controllable=_flag(child, "isControllable"),
                parent_id=child.get("parentId") or None,
            )
        )
    return nodes


def _children(elem: Element, name: str) -> Iterable[Element]:
    return (child for child in elem if local_name(child, NS_CONCENTRATORS) == name)


def _flag(elem: Element, attr: str) -> bool:
    # A concentrator that writes a bad boolean gets it read as false, not a crash.
    try:
        return parse_bool_attr(elem, attr, elem.tag)
    except BadRequest:
        return False
