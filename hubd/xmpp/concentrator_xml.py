"""XEP-0326 node elements: a node's attributes, its parameters (secrets left out), its messages.

Pure: a :class:`~hubd.core.node.Node` in, ElementTree elements out, the way
every concentrator response and tree event writes a node.  The requests
themselves are answered in ``hubd/xmpp/concentrator.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from pydantic import SecretStr

from hubd.core import xsd
from hubd.core.driver import DriverConfig
from hubd.core.model import NodeState
from hubd.core.node import Node
from hubd.xmpp.sensordata_xml import qname

NS_CONCENTRATORS = "urn:xmpp:iot:concentrators"

# Config keys never shown to anyone, even owners: they are secrets.
_SECRET_WORDS = ("key", "password", "token", "secret")

#: A node's state as XEP-0326 names it.
STATE_NAMES = {
    NodeState.ONLINE: "None",
    NodeState.STARTING: "Information",
    NodeState.OFFLINE: "ErrorUnsigned",
    NodeState.ERROR: "ErrorUnsigned",
}


def node_attributes(node: Node, source_id: str) -> dict[str, str]:
    """The attributes of a ``<node>`` element: id, name, type, state, what it can do."""
    return {
        "nodeId": node.id,
        "displayName": node.name,
        "nodeType": node.kind,
        "sourceId": source_id,
        "state": STATE_NAMES[node.state],
        "hasChildren": "false",
        "isReadable": "true",
        "isControllable": xsd.format_boolean(bool(node.spec.writable)),
        "hasCommands": "false",
        "lastChanged": xsd.format_datetime(node.last_changed),
    }


def node_parameters(node: Node) -> list[tuple[str, str, object]]:
    """The node's configuration as (id, label, value), secrets left out."""
    params: list[tuple[str, str, object]] = [
        ("id", "Node ID", node.id),
        ("name", "Name", node.name),
        ("driver", "Driver", node.kind),
    ]
    common = set(DriverConfig.model_fields)
    for key, info in type(node.config).model_fields.items():
        if key in common or any(word in key.lower() for word in _SECRET_WORDS):
            continue
        value = getattr(node.config, key)
        if value is None or isinstance(value, SecretStr):
            continue
        label = info.description or key.replace("_", " ").capitalize()
        params.append((key, label, value))
    return params


def add_parameters(element: Element, node: Node) -> None:
    """Add the node's parameters to ``element``, each as a typed XEP-0326 element."""
    for key, label, value in node_parameters(node):
        tag, text = _typed(value)
        SubElement(element, qname(NS_CONCENTRATORS, tag), {"id": key, "name": label, "value": text})


def _typed(value: object) -> tuple[str, str]:
    if isinstance(value, bool):
        return "boolean", xsd.format_boolean(value)
    if isinstance(value, int):
        return ("int" if -(2**31) <= value < 2**31 else "long"), str(value)
    if isinstance(value, float):
        return "double", repr(value)
    if isinstance(value, datetime):
        return "dateTime", xsd.format_datetime(value)
    return "string", lexical(value)


def lexical(value: object) -> str:
    """A parameter's value as text: booleans in XML Schema form, collections flattened."""
    if isinstance(value, bool):
        return xsd.format_boolean(value)
    if isinstance(value, dict | list | tuple):
        return _flatten(value)
    return str(value)


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_flatten(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_flatten(v) for v in value)
    if hasattr(value, "model_dump"):
        return _flatten(value.model_dump(exclude_none=True))
    return str(value)


def add_messages(element: Element, node: Node) -> None:
    """Add the node's state message, when it has one, as a ``<message>``."""
    if node.state_message:
        kind = "Error" if node.state in (NodeState.OFFLINE, NodeState.ERROR) else "Information"
        message = SubElement(
            element,
            qname(NS_CONCENTRATORS, "message"),
            {"timestamp": xsd.format_datetime(node.last_changed), "type": kind},
        )
        message.text = node.state_message
