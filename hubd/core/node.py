"""A node of the concentrator: one configured device, its driver, state and latest values."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from hubd.core.driver import AnyDriver, DriverConfig, utc_now
from hubd.core.model import ONLINE_FIELD, FieldValue, NodeSpec, NodeState


# Slotted: one per device, 204 devices and more on a Pi (weakly referable: a
# reload's frees are tested with weak references).
@dataclass(eq=False, slots=True, weakref_slot=True)
class Node:
    """One device as the hub keeps it (mutated on the event-loop thread only)."""

    config: DriverConfig
    driver: AnyDriver
    spec: NodeSpec
    state: NodeState = NodeState.STARTING
    state_message: str | None = None
    last_changed: datetime = field(default_factory=utc_now)
    cache: dict[str, FieldValue] = field(default_factory=dict)
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    def create(cls, config: DriverConfig, driver: AnyDriver) -> Node:
        """Build a node, adding the ``online`` status field every device has."""
        described = driver.describe()
        spec = NodeSpec(fields=(*described.fields, ONLINE_FIELD))
        return cls(config=config, driver=driver, spec=spec)

    @property
    def id(self) -> str:
        """The node id (XEP-0326 nodeId)."""
        return self.config.id

    @property
    def name(self) -> str:
        """A name for people."""
        return self.config.name or self.config.id

    @property
    def kind(self) -> str:
        """The driver kind, e.g. ``gpio.output``."""
        return self.config.driver

    @property
    def source(self) -> str:
        """The bus the node hangs on (``gpio``, ``serial``, ``ble``): its data source."""
        return self.kind.split(".", 1)[0]

    @property
    def online(self) -> bool:
        """True while the hardware answers."""
        return self.state is NodeState.ONLINE
