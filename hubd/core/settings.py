"""Settings of the buses (``gpio:``, ``ble:``) that drivers read from their context.

These are plain data in the core: the core names the config sections of the
contract but never imports the drivers that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PinFactoryName = Literal["lgpio", "mock", "rpigpio", "pigpio", "native"]


class GpioSettings(BaseModel):
    """``gpio:``: how GPIO pins are reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pin_factory: PinFactoryName = Field(
        default="lgpio", description='lgpio on a Pi; "mock" simulates pins (demo, tests)'
    )


class BleSettings(BaseModel):
    """``ble:``: the Bluetooth adapter, or a recorded file to replay instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    adapter: str = Field(default="hci0", pattern=r"^hci\d+$")
    replay: Path | None = Field(default=None, description="JSON Lines advertisements to play back")
    speed: float = Field(default=1.0, gt=0, description="replay speed factor")
    loop: bool = Field(default=False, description="replay the file again and again")
    rescan_after: float = Field(
        default=300.0,
        ge=10,
        description="seconds without any advertisement before the scan is restarted",
    )


class BusSettings(BaseModel):
    """All bus settings together, as a driver's context carries them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpio: GpioSettings = GpioSettings()
    ble: BleSettings = BleSettings()


class EventsSettings(BaseModel):
    """``events:``: how many undelivered events to keep, and how much history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue_limit: int = Field(
        default=1000, ge=1, le=1_000_000, description="undelivered events kept per subscriber"
    )
    history_days: float = Field(default=7.0, gt=0, le=3650, description="days of readings kept")
    history_interval: float = Field(
        default=300.0, ge=0, description="seconds between stored readings of an unchanged field"
    )


class UploadSettings(BaseModel):
    """``uploads:``: where charts are shared (XEP-0363); default: found by disco on the server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str | None = Field(
        default=None, min_length=1, description="the upload service's JID, e.g. upload.example.org"
    )

    @field_validator("service")
    @classmethod
    def _check_service(cls, value: str | None) -> str | None:
        if value is not None and ("@" in value or "/" in value or " " in value):
            raise ValueError("must be a service's JID, like upload.example.org")
        return value
