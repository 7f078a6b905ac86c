"""XEP-0326 tree events for a remote's data source: what changed between two views of it.

Pure: ElementTree out, no slixmpp.  Each time this hub learns something new
of a remote (its tree fetched again after one of its own tree events or a
presence, the remote gone offline, back, or refused as a loop), the nodes as
shown before and after are compared; each difference is one event for the
people subscribed to the remote's ``sourceId`` here: ``nodeAdded``,
``nodeRemoved``, ``nodeStatusChanged`` (state or message), ``nodeUpdated``
(name, type, readable, controllable).
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.remote_source import STATE_ERROR, RemoteNode
from hubd.xmpp.concentrator import TreeSubscription
from hubd.xmpp.concentrator_remote import remote_node_attributes
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.sensordata_xml import qname


def tree_changes(
    before: Mapping[str, RemoteNode], after: Mapping[str, RemoteNode]
) -> list[tuple[str, RemoteNode]]:
    """The events between two views of a remote's nodes (by node id), in the after order."""
    changes: list[tuple[str, RemoteNode]] = []
    for node_id, node in after.items():
        old = before.get(node_id)
        if old is None:
            changes.append(("nodeAdded", node))
        elif (old.state, old.message) != (node.state, node.message):
            changes.append(("nodeStatusChanged", node))
        elif (old.name, old.node_type, old.readable, old.controllable) != (
            node.name,
            node.node_type,
            node.readable,
            node.controllable,
        ):
            changes.append(("nodeUpdated", node))
    changes.extend(
        ("nodeRemoved", node) for node_id, node in before.items() if node_id not in after
    )
    return changes


def remote_tree_element(
    kind: str, node: RemoteNode, source_id: str, sub: TreeSubscription
) -> Element:
    """The event element for one change, as the subscription asked for it."""
    ref = {"sourceId": source_id, "nodeId": node.node_id}
    if kind in ("nodeAdded", "nodeUpdated"):
        element = Element(qname(NS_CONCENTRATORS, kind), remote_node_attributes(node, source_id))
        if sub.messages:
            _add_message(element, node)
        return element
    if kind == "nodeStatusChanged":
        element = Element(qname(NS_CONCENTRATORS, kind), {**ref, "state": node.state})
        _add_message(element, node)
        return element
    return Element(qname(NS_CONCENTRATORS, kind), ref)


def _add_message(element: Element, node: RemoteNode) -> None:
    if not node.message:
        return
    attrs = {"type": "Error" if node.state == STATE_ERROR else "Information"}
    if node.last_changed is not None:
        attrs["timestamp"] = xsd.format_datetime(node.last_changed)
    SubElement(element, qname(NS_CONCENTRATORS, "message"), attrs).text = node.message
