"""Run one driver outside the daemon: a context whose publications are recorded.

For driver tests (hubd's and third-party): the same :class:`DriverContext` the
daemon builds, with the values a driver publishes collected in a list and its
availability reports kept, so tests wait on them instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from hubd.core.driver import DriverContext
from hubd.core.model import FieldValue
from hubd.core.resources import SharedResources
from hubd.core.settings import BusSettings, GpioSettings


@dataclass
class Recorder:
    """What a driver under test published, and a way to wait for more."""

    values: list[FieldValue] = field(default_factory=list)
    availability: list[tuple[bool, str | None]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def publish(self, values: Sequence[FieldValue]) -> None:
        """Record values (event-loop thread)."""
        self.values.extend(values)
        self.changed.set()

    def latest(self, name: str) -> FieldValue | None:
        """The newest value of field ``name``."""
        for value in reversed(self.values):
            if value.name == name:
                return value
        return None

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[FieldValue]:  # noqa: ASYNC109
        """Wait until at least ``count`` values were published; return them all."""
        async with asyncio.timeout(timeout):
            while len(self.values) < count:
                self.changed.clear()
                await self.changed.wait()
        return list(self.values)


def make_context(
    node_id: str = "test",
    settings: BusSettings | None = None,
    resources: SharedResources | None = None,
) -> tuple[DriverContext, Recorder]:
    """Build a context for a driver under test (call from a running event loop)."""
    loop = asyncio.get_running_loop()
    recorder = Recorder()

    def publish_threadsafe(values: Sequence[FieldValue]) -> None:
        loop.call_soon_threadsafe(recorder.publish, values)

    ctx = DriverContext(
        node_id=node_id,
        logger=logging.getLogger(f"hubd.node.{node_id}"),
        settings=settings or BusSettings(gpio=GpioSettings(pin_factory="mock")),
        resources=resources or SharedResources(),
        publish=recorder.publish,
        publish_threadsafe=publish_threadsafe,
        set_available=lambda ok, why: recorder.availability.append((ok, why)),
    )
    return ctx, recorder
