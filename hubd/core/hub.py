"""The hub: the node table, the latest-value cache, reads and writes routed to drivers.

Data flows one way: a driver publishes values, the hub caches them and tells
its listeners (events, XMPP presence).  Commands flow back the same path: an
interface asks the hub to read or write, the hub validates against the field
description and calls the driver, one write at a time per node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from hubd.core.driver import utc_now
from hubd.core.model import FieldSpec, FieldValue, NodeSpec, NodeState, Value, infer_field
from hubd.core.node import Node
from hubd.errors import (
    ControlError,
    ControlNotSupported,
    DriverError,
    DriverUnavailable,
    NodeNotFound,
    ReadoutError,
    UnknownParameter,
)

_LOGGER = logging.getLogger(__name__)
_AUDIT = logging.getLogger("hubd.audit")

# A device whose fields come from its data (serial.lines) must not grow a node
# without bound when it sends noise that happens to parse.
MAX_DYNAMIC_FIELDS = 64


class HubListener(Protocol):
    """Something that wants to know when values or node states change."""

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """New values were published for ``node``."""

    def on_state(self, node: Node) -> None:
        """``node`` changed state (online, offline, error)."""


class TreeListener(Protocol):
    """Something that wants to know when nodes join or leave the hub (a reload)."""

    def on_node_added(self, node: Node) -> None:
        """``node`` was added."""

    def on_node_removed(self, node: Node) -> None:
        """``node`` was removed."""


class Hub:
    """The concentrator's node table and its routing."""

    def __init__(self, nodes: Iterable[Node], now: Callable[[], datetime] = utc_now) -> None:
        self.nodes: dict[str, Node] = {node.id: node for node in nodes}
        self._listeners: list[HubListener] = []
        self._tree_listeners: list[TreeListener] = []
        self._now = now

    def add_listener(self, listener: HubListener) -> None:
        """Register ``listener`` for values and state changes."""
        self._listeners.append(listener)

    def add_tree_listener(self, listener: TreeListener) -> None:
        """Register ``listener`` for nodes added and removed."""
        self._tree_listeners.append(listener)

    def remove_listener(self, listener: HubListener) -> None:
        """Forget ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def node(self, node_id: str) -> Node:
        """Return the node ``node_id`` or raise NodeNotFound."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NodeNotFound(node_id) from None

    def add_node(self, node: Node) -> None:
        """Put ``node`` in the table (a reload added it); its id must be free."""
        if node.id in self.nodes:
            raise ValueError(f"node {node.id} already exists")
        self.nodes[node.id] = node
        for listener in tuple(self._tree_listeners):
            listener.on_node_added(node)

    def remove_node(self, node_id: str) -> Node | None:
        """Take ``node_id`` out of the table (a reload removed it); return it, if it was there.

        Readouts already under way keep their reference and finish or fail on
        their own; new requests get NodeNotFound.  The caller stops the driver.
        """
        node = self.nodes.pop(node_id, None)
        if node is not None:
            for listener in tuple(self._tree_listeners):
                listener.on_node_removed(node)
        return node

    def counts(self) -> tuple[int, int]:
        """Return (devices, devices not online)."""
        offline = sum(1 for node in self.nodes.values() if not node.online)
        return len(self.nodes), offline

    def ingest(self, node_id: str, values: Sequence[FieldValue]) -> None:
        """Take values a driver published: cache them and tell the listeners."""
        node = self.nodes.get(node_id)
        if node is None:
            return
        if node.driver.dynamic_fields:
            self._learn_fields(node, values)
        accepted = [v for v in values if node.spec.get(v.name) is not None]
        if len(accepted) != len(values):
            unknown = sorted({v.name for v in values} - {v.name for v in accepted})
            _LOGGER.debug("node %s published undeclared fields %s", node_id, unknown)
        if not accepted:
            return
        for value in accepted:
            node.cache[value.name] = value
        for listener in tuple(self._listeners):
            listener.on_values(node, accepted)

    def _learn_fields(self, node: Node, values: Sequence[FieldValue]) -> None:
        new: list[FieldSpec] = []
        for value in values:
            if node.spec.get(value.name) is None and value.name not in {s.name for s in new}:
                spec = infer_field(value.name, value.value)
                if spec is not None:
                    new.append(spec)
        if not new:
            return
        room = MAX_DYNAMIC_FIELDS - len(node.spec.fields)
        if room < len(new):
            _LOGGER.warning(
                "node %s: not adding fields %s: a node has at most %d",
                node.id,
                ", ".join(s.name for s in new[max(room, 0) :]),
                MAX_DYNAMIC_FIELDS,
            )
            new = new[: max(room, 0)]
        if new:
            node.spec = NodeSpec(fields=(*node.spec.fields, *new))
            _LOGGER.info("node %s: new field(s) %s", node.id, ", ".join(s.name for s in new))

    def set_state(self, node_id: str, state: NodeState, message: str | None = None) -> None:
        """Move a node to ``state``; logs and notifies once per transition."""
        node = self.nodes.get(node_id)
        if node is None or (node.state is state and node.state_message == message):
            return
        previous = node.state
        node.state = state
        node.state_message = message
        node.last_changed = self._now()
        if state is NodeState.ONLINE:
            if previous is not NodeState.STARTING:
                _LOGGER.info("node %s is back online", node_id)
            else:
                _LOGGER.info("node %s is online", node_id)
        elif previous is not state:
            _LOGGER.warning("node %s is %s: %s", node_id, state.value, message or "no reason given")
        online = FieldValue("online", state is NodeState.ONLINE, node.last_changed)
        node.cache["online"] = online
        for listener in tuple(self._listeners):
            listener.on_state(node)
            listener.on_values(node, [online])

    async def read(self, node_id: str, fields: frozenset[str] = frozenset()) -> list[FieldValue]:
        """Read ``fields`` (all when empty) of a node from its driver, with a timeout."""
        node = self.node(node_id)
        if not node.online:
            raise DriverUnavailable(node.state_message or f"{node_id} is {node.state.value}")
        wanted = fields - {"online"}
        try:
            async with asyncio.timeout(node.driver.read_timeout):
                values = list(await node.driver.read(wanted))
        except TimeoutError:
            raise ReadoutError(
                f"{node_id}: no answer within {node.driver.read_timeout:g} s"
            ) from None
        self.ingest(node_id, values)
        result = [v for v in values if not fields or v.name in fields]
        if not fields or "online" in fields:
            result.append(node.cache.get("online") or FieldValue("online", True, self._now()))
        return result

    def validate(self, node_id: str, field: str, raw: object) -> Value:
        """Check a control value against the field's description; return it typed."""
        node = self.node(node_id)
        spec = node.spec.get(field)
        if spec is None:
            raise UnknownParameter(f"{node_id} has no field {field!r}", field=field)
        if not spec.writable:
            raise ControlNotSupported(f"{node_id}.{field} cannot be written", field=field)
        return spec.coerce(raw)

    async def write(self, node_id: str, field: str, raw: object, *, actor: str) -> Value:
        """Validate and carry out a control; one at a time per node; audited."""
        try:
            value = self.validate(node_id, field, raw)
            node = self.node(node_id)
            if not node.online:
                raise DriverUnavailable(node.state_message or f"{node_id} is {node.state.value}")
            async with node.write_lock:
                await node.driver.write(field, value)
        except (ControlError, DriverError, NodeNotFound) as err:
            _AUDIT.info("control by %s: %s.%s = %r refused: %s", actor, node_id, field, raw, err)
            raise
        _AUDIT.info("control by %s: %s.%s = %s done", actor, node_id, field, value)
        return value
