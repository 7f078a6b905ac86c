"""``gpio.output``: a relay, an LED, anything switched by one pin."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import Field

from drivers.gpio.pins import open_device, shared_pin_factory
from hubd.driver import Driver, DriverConfig
from hubd.errors import DriverUnavailable
from hubd.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value

STATE = FieldSpec(
    name="state",
    type=FieldType.BOOLEAN,
    categories=frozenset({Category.MOMENTARY, Category.STATUS}),
    writable=True,
    description="on (true) or off (false)",
)


class OutputConfig(DriverConfig):
    """Keys of a ``gpio.output`` device."""

    pin: int = Field(ge=0, le=27, description="BCM pin number")
    active_high: bool = Field(default=True, description="false when the relay switches on low")
    initial: bool = Field(default=False, description="state set at start")

    def claims(self) -> Iterable[str]:
        """The pin is exclusive."""
        return (f"gpio:{self.pin}",)


class OutputDriver(Driver[OutputConfig]):
    """A digital output: relay, LED, buzzer.

    Options: ``pin`` (BCM 0-27), ``active_high`` (default true), ``initial``
    (state at start, default off).  Field: ``state`` (boolean, writable).
    Pushes its state after every change.
    """

    kind = "gpio.output"
    config_model = OutputConfig
    static_fields = (STATE,)

    _device: Any = None

    def describe(self) -> NodeSpec:
        """One writable boolean, ``state``."""
        return NodeSpec(fields=(STATE,))

    async def start(self) -> None:
        """Open the pin and set the initial state."""
        factory = shared_pin_factory(self.ctx)
        config = self.config

        def open_pin() -> Any:
            from gpiozero import DigitalOutputDevice

            return DigitalOutputDevice(
                config.pin,
                active_high=config.active_high,
                initial_value=config.initial,
                pin_factory=factory,
            )

        self._device = await open_device(config.pin, open_pin)
        self.ctx.publish([self.ctx.value("state", bool(self._device.value))])

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The current state."""
        if self._device is None:
            raise DriverUnavailable("not started")
        return [self.ctx.value("state", bool(self._device.value))]

    async def write(self, field: str, value: Value) -> None:
        """Switch on or off."""
        if self._device is None:
            raise DriverUnavailable("not started")
        if value:
            self._device.on()
        else:
            self._device.off()
        self.ctx.publish([self.ctx.value("state", bool(self._device.value))])

    async def stop(self) -> None:
        """Release the pin."""
        device, self._device = self._device, None
        if device is not None:
            device.close()
