"""``gpio.input``: a contact, button, PIR or reed switch on one pin."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from pydantic import Field, model_validator

from drivers.gpio.pins import PinConfig, close_device, open_device, shared_pin_factory
from hubd.core.driver import Driver, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec
from hubd.errors import DriverUnavailable

STATE = FieldSpec(
    name="state",
    type=FieldType.BOOLEAN,
    categories=frozenset({Category.MOMENTARY}),
    description="true while the input is active",
)
COUNT = FieldSpec(
    name="count",
    type=FieldType.LONG,
    categories=frozenset({Category.STATUS}),
    description="activations (inactive to active edges) since hubd started",
)
LAST_CHANGE = FieldSpec(
    name="last_change",
    type=FieldType.DATETIME,
    categories=frozenset({Category.STATUS}),
    description="when the state last changed",
)


class InputConfig(PinConfig):
    """Keys of a ``gpio.input`` device."""

    pull_up: bool | None = Field(
        default=False,
        description="true: internal pull-up (active low); false: pull-down; null: floating",
    )
    active_state: bool | None = Field(
        default=None, description="needed when pull_up is null: true if high means active"
    )
    bounce_time: float | None = Field(
        default=None, gt=0, le=10, description="seconds to ignore further edges after one"
    )
    count_edges: bool = Field(
        default=False,
        description="also expose count (long: activations) and last_change (dateTime)",
    )

    @model_validator(mode="after")
    def _pull_and_active_state(self) -> Self:
        # gpiozero refuses both combinations at open time; say it at config time instead.
        if self.pull_up is None and self.active_state is None:
            raise ValueError("active_state: required when pull_up is null (an external resistor)")
        if self.pull_up is not None and self.active_state is not None:
            raise ValueError(
                "active_state: only with pull_up: null; the pull resistor sets the active state"
            )
        return self


@dataclass(frozen=True, slots=True)
class _Edge:
    """One edge as seen on gpiozero's thread: the new state and when it happened."""

    active: bool
    stamp: datetime
    mono: float


class InputDriver(Driver[InputConfig]):
    """A digital input: door contact, button, PIR, reed switch; edges pushed as events.

    Options: ``pin`` (BCM 0-27); ``pull_up`` (true: internal pull-up, the
    contact closes to ground and low means active; false: pull-down; null: an
    external resistor, then ``active_state`` says whether high means active);
    ``bounce_time`` (seconds: edges closer than this to the last accepted one
    are dropped as contact chatter, the state is checked again when the window
    ends); ``count_edges`` (adds the fields ``count`` and ``last_change``).

    Fields: ``state`` (boolean, true while active), pushed on every accepted
    edge; with ``count_edges``, ``count`` (long, status: activations since hubd
    started) and ``last_change`` (dateTime, status), pushed with it.
    """

    kind = "gpio.input"
    config_model = InputConfig
    static_fields = (STATE,)

    def __init__(
        self,
        config: InputConfig,
        ctx: DriverContext,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, ctx)
        self._clock = clock
        self._device: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Loop-thread state: the debounced view of the pin.
        self._state = False
        self._accepted_at: float | None = None
        self._pending: _Edge | None = None
        self._settle: asyncio.TimerHandle | None = None
        self._count = 0
        self._last_change: datetime | None = None

    def describe(self) -> NodeSpec:
        """``state``; with count_edges also ``count`` and ``last_change``."""
        if self.config.count_edges:
            return NodeSpec(fields=(STATE, COUNT, LAST_CHANGE))
        return NodeSpec(fields=(STATE,))

    async def start(self) -> None:
        """Open the pin and push every edge."""
        factory = shared_pin_factory(self.ctx)
        config = self.config

        def open_pin() -> Any:
            from gpiozero import DigitalInputDevice

            # No bounce_time for gpiozero: the mock factory ignores it and lgpio
            # debounces differently, so hubd filters edges itself, the same on all.
            return DigitalInputDevice(
                config.pin,
                pull_up=config.pull_up,
                active_state=config.active_state,
                pin_factory=factory,
            )

        device = await open_device(config.pin, open_pin)
        self._loop = asyncio.get_running_loop()
        self._device = device
        self._accepted_at = None
        self._pending = None
        # Callbacks before the first read, so no edge falls between the two; an
        # edge that repeats the state read here is ignored by _on_edge.
        device.when_activated = lambda: self._from_thread(True)
        device.when_deactivated = lambda: self._from_thread(False)
        self._state = bool(device.value)
        self.ctx.publish(self._values(self.ctx.now()))

    def _from_thread(self, active: bool) -> None:
        """Run on gpiozero's thread (the caller's with mock pins): stamp the edge, hand it over."""
        loop = self._loop
        if loop is None:
            return
        edge = _Edge(active, self.ctx.now(), self._clock())
        # RuntimeError: the loop closed while gpiozero still delivered an edge;
        # nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._on_edge, edge)

    def _on_edge(self, edge: _Edge) -> None:
        """Debounce and publish one edge (event-loop thread)."""
        if self._device is None:
            return  # stopped meanwhile
        bounce = self.config.bounce_time
        if bounce is not None and self._accepted_at is not None:
            remaining = self._accepted_at + bounce - edge.mono
            if remaining > 0:
                # Chatter: drop the edge, but remember it; if the pin settled in
                # the other state inside the window, that change is published
                # when the window ends instead of being lost.
                self._pending = edge
                if self._settle is None:
                    loop = asyncio.get_running_loop()
                    self._settle = loop.call_later(remaining, self._settled)
                return
        self._pending = None
        self._accept(edge)

    def _settled(self) -> None:
        self._settle = None
        edge, self._pending = self._pending, None
        if edge is not None and self._device is not None:
            self._accept(edge)

    def _accept(self, edge: _Edge) -> None:
        if edge.active == self._state:
            return  # a repeat (the other edge was dropped): nothing changed
        self._state = edge.active
        self._accepted_at = edge.mono
        self._last_change = edge.stamp
        if edge.active:
            self._count += 1
        self.ctx.publish(self._values(edge.stamp))

    def _values(self, stamp: datetime) -> list[FieldValue]:
        values = [FieldValue("state", self._state, stamp)]
        if self.config.count_edges:
            values.append(FieldValue("count", self._count, stamp))
            if self._last_change is not None:
                values.append(FieldValue("last_change", self._last_change, stamp))
        return values

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The debounced state (and the counter and last change when enabled)."""
        device = self._device
        if device is None:
            raise DriverUnavailable("not started")
        live = bool(device.value)
        if live != self._state and self._settle is None:
            # An edge the library never reported (or still in flight): the pin
            # is the truth, so take it as an edge now rather than stay stale.
            self._accept(_Edge(live, self.ctx.now(), self._clock()))
        return self._values(self.ctx.now())

    async def stop(self) -> None:
        """Release the pin and forget pending edges."""
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        self._pending = None
        device, self._device = self._device, None
        self._loop = None
        if device is not None:
            close_device(device)
