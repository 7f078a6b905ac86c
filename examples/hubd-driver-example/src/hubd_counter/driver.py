"""``example.counter``: a simulated counter, the smallest complete hubd driver.

It needs no hardware: a task the driver owns adds ``step`` to ``count`` every
``interval`` seconds and publishes it.  ``count`` is writable (a control sets
it, 0 resets it) and remembered across restarts of hubd in the node's memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Self

from pydantic import Field, model_validator

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import ControlNotSupported, InvalidValue

COUNT = FieldSpec(
    name="count",
    type=FieldType.LONG,
    categories=frozenset({Category.MOMENTARY}),
    writable=True,
    minimum=Decimal(0),
    description="ticks counted; write a number to count on from there (0 resets)",
)

#: Seconds stop() waits for the ticking task to end.
STOP_TIMEOUT = 5.0


class CounterConfig(DriverConfig):
    """Keys of an ``example.counter`` device; ``id``, ``name``, ``driver`` are DriverConfig's."""

    interval: float = Field(default=1.0, gt=0, le=3600, description="seconds between ticks")
    step: int = Field(default=1, ge=1, description="added to count at each tick")
    maximum: int = Field(
        default=1_000_000, ge=1, lt=2**63, description="count wraps to 0 beyond this"
    )

    @model_validator(mode="after")
    def _step_fits(self) -> Self:
        # A problem that involves two keys: hubd reports it at the device, with its line.
        if self.step > self.maximum:
            raise ValueError(f"step: {self.step} is above maximum ({self.maximum})")
        return self


class CounterDriver(Driver[CounterConfig]):
    """A simulated counter: ``count`` goes up by ``step`` every ``interval`` seconds.

    Options: ``interval`` (seconds, default 1), ``step`` (default 1), ``maximum``
    (``count`` wraps to 0 beyond it; default 1000000).

    Field: ``count`` (long, writable from 0 to ``maximum``), pushed at every tick
    and after every write; kept across restarts of hubd.
    """

    kind = "example.counter"
    config_model = CounterConfig
    static_fields = (COUNT,)

    def __init__(self, config: CounterConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._count = 0
        self._ticker: asyncio.Task[None] | None = None

    def describe(self) -> NodeSpec:
        """``count``, bounded by this device's ``maximum`` (the hub checks writes against it)."""
        return NodeSpec(fields=(dataclasses.replace(COUNT, maximum=Decimal(self.config.maximum)),))

    async def start(self) -> None:
        """Take up the remembered count, publish it, start ticking."""
        saved = (await self.ctx.memory.load()).get("count")
        # The memory is a file on disk: take nothing from it on trust.
        if isinstance(saved, int) and not isinstance(saved, bool):
            self._count = saved if 0 <= saved <= self.config.maximum else 0
        self._publish()
        self._ticker = asyncio.create_task(self._tick(), name=f"counter {self.ctx.node_id}")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.config.interval)
            following = self._count + self.config.step
            self._count = following if following <= self.config.maximum else 0
            self._publish()

    def _publish(self) -> None:
        self.ctx.publish([self.ctx.value("count", self._count)])

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The current count (the only field, so ``fields`` changes nothing)."""
        return [self.ctx.value("count", self._count)]

    async def write(self, field: str, value: Value) -> None:
        """Set ``count``; the hub has already checked the type and the range."""
        if field != "count":
            raise ControlNotSupported(f"{field} cannot be written", field=field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValue(f"count: expected a whole number, got {value!r}", field=field)
        self._count = value
        self._publish()
        await self.ctx.memory.save({"count": value})

    async def stop(self) -> None:
        """Stop ticking and remember the count; idempotent, safe after a failed start."""
        ticker, self._ticker = self._ticker, None
        if ticker is None:
            return
        ticker.cancel()
        # asyncio.wait does not raise the task's CancelledError here, but does
        # raise ours if stop() itself is cancelled: a cancellation is never swallowed.
        await asyncio.wait({ticker}, timeout=STOP_TIMEOUT)
        await self.ctx.memory.save({"count": self._count})
