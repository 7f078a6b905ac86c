"""How hubctl names devices: ``door`` on the hub itself, ``garage/door`` on a remote hub.

A hub that lists other hubs in its ``remotes:`` shows each as a child data
source of ``MeteringTopology`` (XEP-0326), and node ids are unique within one
hub only (two Pis may both have a ``porch-light``), so a remote's device is
named by its ``sourceId`` and ``nodeId`` together, as chat writes it:
``garage/door``.  A name without a slash is a device of the hub itself, as it
always was.

On the wire the hub's own nodes carry a ``sourceId`` too (their bus, ``gpio``),
so naming what a readout brings back needs the hub's own data sources:
``MeteringTopology`` and the bus each of its own nodes hangs on, which hubd
writes as the first word of the node's ``nodeType`` (``gpio.output``).  A
remote's id is never one of them (hubd's config refuses that).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hubd.errors import UsageError
from hubd.xmpp.client_xml import BrowsedNode
from hubd.xmpp.sensordata_xml import NodeRef

ROOT_SOURCE = "MeteringTopology"
SEPARATOR = "/"


@dataclass(frozen=True, slots=True)
class DeviceName:
    """A device as typed: its node id, and the remote's data source id when it has one."""

    node_id: str
    source_id: str | None = None

    @property
    def ref(self) -> NodeRef:
        """How the wire addresses it."""
        return NodeRef(self.node_id, self.source_id)

    def __str__(self) -> str:
        if self.source_id is None:
            return self.node_id
        return f"{self.source_id}{SEPARATOR}{self.node_id}"

    def matches(self, node: NodeRef) -> bool:
        """True when ``node`` (from an answer) is this device.

        A device of the hub itself comes back under its bus's ``sourceId``;
        only a remote's device must come back under the remote's.
        """
        if node.node_id != self.node_id:
            return False
        return self.source_id is None or node.source_id == self.source_id


def parse_device(text: str) -> DeviceName:
    """``door`` or ``garage/door`` as a :class:`DeviceName`; UsageError for anything else."""
    if not text or text != text.strip() or any(c.isspace() or not c.isprintable() for c in text):
        raise UsageError(f"not a device name: {text!r} (write it as door, or garage/door)")
    parts = text.split(SEPARATOR)
    if len(parts) > 2:
        raise UsageError(
            f"not a device name: {text!r}: one remote hub and one device, garage/door "
            "(a remote's own remotes are not reached through it)"
        )
    if any(not part for part in parts):
        raise UsageError(f"not a device name: {text!r} (write it as door, or garage/door)")
    if len(parts) == 1:
        return DeviceName(parts[0])
    source, node = parts
    if source == ROOT_SOURCE:
        return DeviceName(node)  # the root holds the hub's own devices
    return DeviceName(node, source)


def own_sources(nodes: Iterable[BrowsedNode]) -> frozenset[str]:
    """The data sources of the hub's own devices: the root, and each device's bus."""
    buses = {node.node_type.split(".", 1)[0] for node in nodes if node.node_type}
    return frozenset({ROOT_SOURCE, *buses})


@dataclass(frozen=True, slots=True)
class Namer:
    """Names the nodes of an answer: plain for the hub's own, ``source/node`` for a remote's.

    ``own`` None: the hub did not say what its own sources are (not a
    concentrator), and every node keeps its plain id, as before remotes.
    """

    own: frozenset[str] | None = None

    def __call__(self, node: NodeRef) -> str:
        source = node.source_id
        if source is None or self.own is None or source in self.own:
            return node.node_id
        return f"{source}{SEPARATOR}{node.node_id}"
