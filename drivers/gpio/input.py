"""``gpio.input``: a contact, button, PIR or reed switch on one pin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import Field

from drivers.gpio.pins import open_device, shared_pin_factory
from hubd.driver import Driver, DriverConfig
from hubd.errors import DriverUnavailable
from hubd.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec

STATE = FieldSpec(
    name="state",
    type=FieldType.BOOLEAN,
    categories=frozenset({Category.MOMENTARY}),
    description="true while the input is active",
)


class InputConfig(DriverConfig):
    """Keys of a ``gpio.input`` device."""

    pin: int = Field(ge=0, le=27, description="BCM pin number")
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

    def claims(self) -> Iterable[str]:
        """The pin is exclusive."""
        return (f"gpio:{self.pin}",)


class InputDriver(Driver[InputConfig]):
    """A digital input: door contact, button, PIR, reed switch.

    Options: ``pin`` (BCM 0-27), ``pull_up`` (true, false, or null for an
    external resistor, then ``active_state``), ``bounce_time`` (seconds).
    Field: ``state`` (boolean).  Every edge is pushed as an event.
    """

    kind = "gpio.input"
    config_model = InputConfig
    static_fields = (STATE,)

    _device: Any = None

    def describe(self) -> NodeSpec:
        """One boolean, ``state``."""
        return NodeSpec(fields=(STATE,))

    async def start(self) -> None:
        """Open the pin and push every edge."""
        factory = shared_pin_factory(self.ctx)
        config = self.config

        def open_pin() -> Any:
            from gpiozero import DigitalInputDevice

            return DigitalInputDevice(
                config.pin,
                pull_up=config.pull_up,
                active_state=config.active_state,
                bounce_time=config.bounce_time,
                pin_factory=factory,
            )

        device = await open_device(config.pin, open_pin)
        # gpiozero calls these on its own thread (or the caller's, with mock pins).
        device.when_activated = lambda: self._edge(True)
        device.when_deactivated = lambda: self._edge(False)
        self._device = device
        self.ctx.publish([self.ctx.value("state", bool(device.value))])

    def _edge(self, active: bool) -> None:
        self.ctx.publish_threadsafe([self.ctx.value("state", active)])

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The current state."""
        if self._device is None:
            raise DriverUnavailable("not started")
        return [self.ctx.value("state", bool(self._device.value))]

    async def stop(self) -> None:
        """Release the pin."""
        device, self._device = self._device, None
        if device is not None:
            device.close()
