"""``gpio.pwm``: a dimmer, a fan, anything driven by a duty cycle on one pin."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import Field

from drivers.gpio.pins import PinConfig, close_device, open_device, shared_pin_factory
from hubd.core.driver import Driver, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import DriverUnavailable, InvalidValue

_STEP = Decimal("0.001")

LEVEL = FieldSpec(
    name="level",
    type=FieldType.NUMERIC,
    decimals=3,
    categories=frozenset({Category.MOMENTARY, Category.STATUS}),
    writable=True,
    minimum=Decimal(0),
    maximum=Decimal(1),
    description="duty cycle: 0.0 off, 1.0 fully on",
)


class PwmConfig(PinConfig):
    """Keys of a ``gpio.pwm`` device."""

    frequency: float = Field(default=100.0, gt=0, le=40000, description="PWM frequency in Hz")
    active_high: bool = Field(default=True, description="false when low means on")
    initial: float = Field(default=0.0, ge=0, le=1, description="level set when the node starts")


class PwmDriver(Driver[PwmConfig]):
    """A PWM output: LED dimmer, fan speed; ``level`` 0.0-1.0 is writable.

    Options: ``pin`` (BCM 0-27), ``frequency`` (Hz, default 100; LEDs flicker
    below about 100, fans often want 25000), ``active_high`` (default true),
    ``initial`` (level set when the node starts, default 0).  The output is
    switched off when hubd stops.

    Field: ``level`` (numeric 0.0-1.0, 3 decimals, writable).  Pushed after
    every change.
    """

    kind = "gpio.pwm"
    config_model = PwmConfig
    static_fields = (LEVEL,)

    def __init__(self, config: PwmConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._device: Any = None

    def describe(self) -> NodeSpec:
        """One writable number, ``level``."""
        return NodeSpec(fields=(LEVEL,))

    async def start(self) -> None:
        """Open the pin at the configured frequency and set the initial level."""
        factory = shared_pin_factory(self.ctx)
        config = self.config

        def open_pin() -> Any:
            from gpiozero import PWMOutputDevice

            return PWMOutputDevice(
                config.pin,
                active_high=config.active_high,
                initial_value=config.initial,
                frequency=config.frequency,
                pin_factory=factory,
            )

        self._device = await open_device(config.pin, open_pin)
        self.ctx.publish([self._level()])

    def _level(self) -> FieldValue:
        # Mock and real pins report a float; three decimals is finer than any
        # software PWM resolves, and keeps 0.1 from showing as 0.1000000000000000055.
        level = Decimal(repr(float(self._device.value))).quantize(_STEP)
        return self.ctx.value("level", level)

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The current level."""
        if self._device is None:
            raise DriverUnavailable("not started")
        return [self._level()]

    async def write(self, field: str, value: Value) -> None:
        """Set the level (already checked to lie in 0.0-1.0)."""
        if self._device is None:
            raise DriverUnavailable("not started")
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise InvalidValue(f"level: expected a number, got {value!r}", field="level")
        self._device.value = float(value)
        self.ctx.publish([self._level()])

    async def stop(self) -> None:
        """Switch off and release the pin."""
        device, self._device = self._device, None
        if device is None:
            return
        try:
            device.off()
        finally:
            close_device(device)
