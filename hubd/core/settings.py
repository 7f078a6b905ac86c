"""Plain settings sections: buses (``gpio:``, ``ble:``), ``events:``, ``pubsub:``, ``discovery:``.

These are plain data in the core: the core names the config sections of the
contract but never imports the drivers that use them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hubd.core.claim import check_tag

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
    history_sample: float = Field(
        default=60.0,
        ge=0,
        description="seconds between stored readings of a number that keeps changing"
        " (0: every change)",
    )
    commit_interval: float = Field(
        default=300.0,
        ge=0,
        le=3600,
        description="seconds readings for the history are held in memory before they are"
        " written (SD-card wear against what a crash or power cut can cost)",
    )


PubSubProfile = Literal["iot", "uwpx"]
DEFAULT_PUBSUB_NODE = "urn:xmpp:iot:sensordata"


class PubSubSettings(BaseModel):
    """``pubsub:``: publish device values through the server (XEP-0060 / XEP-0163)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(
        default="pep",
        description='"pep" (the hub\'s own account) or a pubsub service JID (pubsub.example.org)',
    )
    node: str = Field(default=DEFAULT_PUBSUB_NODE, min_length=1, max_length=256)
    devices: tuple[str, ...] | None = Field(
        default=None, description="devices published (default: every one the audience may read)"
    )
    profiles: tuple[PubSubProfile, ...] = Field(
        default=("iot",), min_length=1, description="iot (XEP-0323 items), uwpx (esp32-xmpp-iot)"
    )

    @field_validator("service")
    @classmethod
    def _check_service(cls, value: str) -> str:
        if value != "pep" and not re.fullmatch(r"([^@/\s]+@)?[^@/\s.]+(\.[^@/\s.]+)+", value):
            raise ValueError('must be "pep" or a pubsub service JID, e.g. pubsub.example.org')
        return value.lower()

    @field_validator("node")
    @classmethod
    def _check_node(cls, value: str) -> str:
        if value != value.strip() or any(ch.isspace() for ch in value):
            raise ValueError("a node name has no spaces")
        return value

    @field_validator("profiles")
    @classmethod
    def _check_profiles(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(values)) != len(values):
            raise ValueError("each profile at most once")
        return values

    @property
    def pep(self) -> bool:
        """True when the nodes live on the hub's own account."""
        return self.service == "pep"


class DiscoverySettings(BaseModel):
    """``discovery:``: register with a XEP-0347 Thing registry, to be claimed by an owner."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str = Field(description='"auto" (a component of the server) or the registry\'s JID')
    meta: dict[str, str | float] = Field(
        default_factory=lambda: dict[str, str | float](MODEL="hubd", CLASS="gateway"),
        description="the meta tags registered (KEY is added: a secret kept in state_dir)",
    )
    self_owned: bool = Field(default=False, description="register as public and self-owned")

    @field_validator("registry")
    @classmethod
    def _check_registry(cls, value: str) -> str:
        if value != "auto" and not re.fullmatch(r"([^@/\s]+@)?[^@/\s]+(/\S+)?", value):
            raise ValueError('"auto", a component (registry.example.org) or a JID')
        return value

    @field_validator("meta", mode="before")
    @classmethod
    def _check_meta(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, tag in value.items():
                check_tag(str(name), tag)
                if str(name).upper() == "KEY":
                    raise ValueError("KEY is made by hubd (a secret in state_dir): leave it out")
        return value


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
