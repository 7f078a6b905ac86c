"""XEP-0323 across two hubs: the request this hub sends on, and the remote's answers relabelled.

Pure: ElementTree in and out.  A readout naming a remote's nodes is sent to
the remote under this hub's identity with a sequence number of this hub's own
(the asker's could clash with another asker's); what comes back is taken
apart into its ``<node>`` (values) and ``<error>`` (failures) children, which
are put back, with the remote's ``sourceId`` in place of its internal one,
into the messages this hub sends the asker under the asker's ``seqnr``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, local_name, qname

# Attributes of a <req/> that are the asker's business here, not the remote's:
# the sequence number is this hub's, and a scheduled readout is scheduled here.
_NOT_FORWARDED = frozenset({"seqnr", "when", "xmlns"})


@dataclass
class RemoteAnswer:
    """What one remote said for its part of a readout, gathered until its ``done``."""

    nodes: list[Element] = field(default_factory=list)
    errors: list[Element] = field(default_factory=list)
    done: bool = False


def forward_req(original: Element, seqnr: int, node_ids: Iterable[str]) -> Element:
    """The ``<req/>`` for the remote: the asker's categories, fields and interval, its nodes."""
    attrs = {k: v for k, v in original.attrib.items() if k not in _NOT_FORWARDED}
    request = Element(qname(NS_SENSORDATA, "req"), {"seqnr": str(seqnr), **attrs})
    for node_id in node_ids:
        SubElement(request, qname(NS_SENSORDATA, "node"), {"nodeId": node_id})
    for child in original:
        if local_name(child, NS_SENSORDATA) == "field":
            request.append(copy.copy(child))
    return request


def take(answer: RemoteAnswer, message: Element, source_id: str) -> None:
    """Add one message from the remote (``fields``, ``failure``, ``done``...) to ``answer``."""
    name = local_name(message, NS_SENSORDATA)
    if name == "fields":
        for node in message.findall(qname(NS_SENSORDATA, "node")):
            answer.nodes.append(_relabelled(node, source_id))
    elif name == "failure":
        for error in message.findall(qname(NS_SENSORDATA, "error")):
            answer.errors.append(_relabelled(error, source_id))
    if name == "done" or message.get("done") == "true":
        answer.done = True


def _relabelled(element: Element, source_id: str) -> Element:
    # In place: the message it came in is the remote's, parsed for this readout alone.
    element.set("sourceId", source_id)
    element.attrib.pop("cacheType", None)  # the remote's cache types mean nothing here
    return element


def narrowed(node: Element, allowed: frozenset[str] | None) -> Element:
    """A remote's ``<node>`` holding only the fields in ``allowed`` (None: all of them).

    A provisioning server may narrow a requester to some fields (XEP-0324
    canRead); the remote answers this hub, which may read them all, so the
    narrowing is done here.  A timestamp left with no field goes too.
    """
    if allowed is None:
        return node
    out = copy.deepcopy(node)
    for stamp in out.findall(qname(NS_SENSORDATA, "timestamp")):
        for value in list(stamp):
            if value.get("name") not in allowed:
                stamp.remove(value)
        if len(stamp) == 0:
            out.remove(stamp)
    return out


def node_errors(source_id: str, node_ids: Iterable[str], text: str) -> list[Element]:
    """One ``<error>`` per node, for a remote that could not give their values."""
    stamp = xsd.format_datetime(datetime.now(UTC))
    errors = []
    for node_id in node_ids:
        error = Element(
            qname(NS_SENSORDATA, "error"),
            {"nodeId": node_id, "sourceId": source_id, "timestamp": stamp},
        )
        error.text = text
        errors.append(error)
    return errors


def missing(answer: RemoteAnswer, node_ids: Iterable[str]) -> list[str]:
    """The nodes the remote said nothing about (neither values nor an error)."""
    said = {e.get("nodeId") for e in (*answer.nodes, *answer.errors)}
    return [node_id for node_id in node_ids if node_id not in said]


def build_message(seqnr: int, kind: str, children: Iterable[Element], done: bool) -> Element:
    """A ``<fields>`` or ``<failure>`` for the asker, holding ``children`` as they are."""
    root = Element(
        qname(NS_SENSORDATA, kind), {"seqnr": str(seqnr), **({"done": "true"} if done else {})}
    )
    root.extend(children)
    return root
