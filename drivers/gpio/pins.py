"""The one pin factory every GPIO driver shares, chosen by ``gpio.pin_factory``.

This is the only module that touches gpiozero's pin factories: ``lgpio`` on a
Pi, ``mock`` (gpiozero's MockFactory with PWM-capable pins) for the demo and
the tests, so both run the same driver code as a Pi.  It also holds what the
pin drivers share: the ``pin`` key with its claim, and opening a device off the
event loop with its errors translated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import Field

from hubd.core.driver import DriverConfig, DriverContext
from hubd.errors import DriverUnavailable

RESOURCE_KEY = "gpio.pin_factory"


class PinConfig(DriverConfig):
    """Keys of a device on one header pin."""

    pin: int = Field(ge=0, le=27, description="BCM pin number")

    def claims(self) -> Iterable[str]:
        """The pin is exclusive: two devices on one pin are a config error."""
        return (f"gpio:{self.pin}",)


def shared_pin_factory(ctx: DriverContext) -> Any:
    """Return the process-wide pin factory, creating it on first use."""
    return ctx.resources.get_or_create(
        RESOURCE_KEY, lambda: make_pin_factory(ctx.settings.gpio.pin_factory), _close
    )


def make_pin_factory(name: str) -> Any:
    """Build the gpiozero pin factory called ``name``; DriverUnavailable if it cannot load."""
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            return MockFactory(pin_class=MockPWMPin)
        if name == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if name == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        if name == "pigpio":
            from gpiozero.pins.pigpio import PiGPIOFactory

            return PiGPIOFactory()
        if name == "native":
            from gpiozero.pins.native import NativeFactory

            return NativeFactory()
    except ImportError as err:
        raise DriverUnavailable(
            f"pin factory {name!r} is not installed ({err.name}); on a Pi install "
            "python3-lgpio and create the venv with --system-site-packages"
        ) from err
    except Exception as err:
        # gpiozero raises many kinds here (no /dev/gpiochip, not a Pi, permissions).
        raise DriverUnavailable(f"pin factory {name!r} cannot start: {err}") from err
    raise DriverUnavailable(f"unknown pin factory {name!r}")


def _close(factory: Any) -> None:
    factory.close()


async def open_device(pin: int, build: Callable[[], Any]) -> Any:
    """Create a gpiozero device off the event loop; its errors become DriverUnavailable."""
    try:
        return await asyncio.to_thread(build)
    except DriverUnavailable:
        raise
    except Exception as err:  # gpiozero's pin errors have no common base worth naming
        raise DriverUnavailable(f"GPIO{pin} cannot be opened: {type(err).__name__}: {err}") from err


def close_device(device: Any) -> None:
    """Detach a gpiozero device's callbacks, then release its pin."""
    # Callbacks first: an edge racing with close() must not reach a stopped driver.
    for name in ("when_activated", "when_deactivated"):
        if hasattr(device, name):
            setattr(device, name, None)
    device.close()
