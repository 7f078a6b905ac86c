"""``gpio.output``: a relay, an LED, anything switched by one pin."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from drivers.gpio.pins import PinConfig, close_device, open_device, shared_pin_factory
from hubd.core.driver import Driver, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import DriverUnavailable

STATE = FieldSpec(
    name="state",
    type=FieldType.BOOLEAN,
    categories=frozenset({Category.MOMENTARY, Category.STATUS}),
    writable=True,
    description="on (true) or off (false)",
)


class OutputConfig(PinConfig):
    """Keys of a ``gpio.output`` device."""

    active_high: bool = Field(default=True, description="false when the relay switches on low")
    initial: bool | Literal["restore"] = Field(
        default=False,
        description='state set when the node starts; "restore": the last state set',
    )
    safe_state: bool = Field(
        default=False, description="state set when hubd stops, before the pin is released"
    )
    pulse: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="seconds: every 'on' turns itself off after this long (gates, bells)",
    )

    @model_validator(mode="after")
    def _pulse_starts_off(self) -> Self:
        if self.pulse is not None and self.initial is not False:
            raise ValueError("initial: must be false with pulse (a pulsed output rests off)")
        return self


class OutputDriver(Driver[OutputConfig]):
    """A digital output: relay, LED, buzzer; ``state`` is writable.

    Options: ``pin`` (BCM 0-27); ``active_high`` (default true; false for relay
    boards that switch on a low pin); ``initial`` (state set when the node
    starts, default off; ``restore``: the state last set, kept across
    restarts); ``safe_state`` (state set when hubd stops or the node
    restarts, before the pin is released; default off); ``pulse`` (seconds:
    each write of ``true`` turns the output on for this long, then off, for
    gate openers and bells; a new write restarts or ends the pulse).

    Field: ``state`` (boolean, writable).  Pushed after every change, including
    the automatic off at the end of a pulse.
    """

    kind = "gpio.output"
    config_model = OutputConfig
    static_fields = (STATE,)

    def __init__(self, config: OutputConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._device: Any = None
        self._pulse_end: asyncio.TimerHandle | None = None

    def describe(self) -> NodeSpec:
        """One writable boolean, ``state``."""
        return NodeSpec(fields=(STATE,))

    async def start(self) -> None:
        """Open the pin and set the initial state."""
        factory = shared_pin_factory(self.ctx)
        config = self.config
        initial = config.initial
        if initial == "restore":
            initial = bool((await self.ctx.memory.load()).get("state", False))

        def open_pin() -> Any:
            from gpiozero import DigitalOutputDevice

            return DigitalOutputDevice(
                config.pin,
                active_high=config.active_high,
                initial_value=initial,
                pin_factory=factory,
            )

        self._device = await open_device(config.pin, open_pin)
        self._publish()

    def _publish(self) -> None:
        self.ctx.publish([self.ctx.value("state", bool(self._device.value))])

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The current state."""
        if self._device is None:
            raise DriverUnavailable("not started")
        return [self.ctx.value("state", bool(self._device.value))]

    async def write(self, field: str, value: Value) -> None:
        """Switch on (for ``pulse`` seconds when configured) or off."""
        device = self._device
        if device is None:
            raise DriverUnavailable("not started")
        self._cancel_pulse()
        # A pin write is one register or ioctl: quick enough for the loop thread.
        if value:
            device.on()
            if self.config.pulse is not None:
                loop = asyncio.get_running_loop()
                self._pulse_end = loop.call_later(self.config.pulse, self._end_pulse)
        else:
            device.off()
        self._publish()
        if self.config.initial == "restore":
            await self.ctx.memory.save({"state": bool(device.value)})

    def _end_pulse(self) -> None:
        self._pulse_end = None
        if self._device is not None:
            self._device.off()
            self._publish()

    def _cancel_pulse(self) -> None:
        if self._pulse_end is not None:
            self._pulse_end.cancel()
            self._pulse_end = None

    async def stop(self) -> None:
        """End a pulse, set the safe state, release the pin."""
        self._cancel_pulse()
        device, self._device = self._device, None
        if device is None:
            return
        try:
            if self.config.safe_state:
                device.on()
            else:
                device.off()
        finally:
            close_device(device)
