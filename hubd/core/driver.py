"""The driver interface: the one way hardware plugs into hubd.

A driver is a small class registered in the ``hubd.drivers`` entry-point group
under its kind (``gpio.output``).  It declares:

* ``config_model``: a pydantic model of its device's YAML keys (extra keys are
  errors, so a typo never passes silently);
* ``describe()``: the fields it exposes (:class:`~hubd.core.model.FieldSpec`);
* ``start()`` / ``read()`` / ``write()`` / ``stop()``, and it pushes values
  through ``ctx.publish`` (or ``ctx.publish_threadsafe`` from a library thread).

A driver reaches the rest of hubd only through its :class:`DriverContext`.
Its class docstring is its user documentation; ``hubd drivers`` prints it.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hubd.core.access_lists import DeviceAccess
from hubd.core.memory import NodeMemory, VolatileMemory
from hubd.core.model import FieldSpec, FieldValue, NodeSpec, Value
from hubd.core.resources import SharedResources
from hubd.core.settings import BusSettings
from hubd.errors import ControlNotSupported

DEVICE_ID_PATTERN = r"^[a-z0-9_-]+$"


class DriverConfig(BaseModel):
    """Keys every device has; a driver's config model adds its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=DEVICE_ID_PATTERN, max_length=64, description="stable node id")
    name: str | None = Field(default=None, max_length=100, description="shown to people")
    driver: str = Field(description="the driver kind, e.g. gpio.output")
    access: DeviceAccess | None = Field(
        default=None, description="roles granted on this device only (readers, controllers, owners)"
    )

    def claims(self) -> Iterable[str]:
        """Exclusive resources this device uses (``gpio:17``); two devices may not share one."""
        return ()


ConfigT = TypeVar("ConfigT", bound=DriverConfig)


def utc_now() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DriverContext:
    """Everything a driver may use of hubd; tests build one with fakes."""

    node_id: str
    logger: logging.Logger
    settings: BusSettings
    resources: SharedResources
    publish: Callable[[Sequence[FieldValue]], None]
    """Hand new values to the hub; call on the event-loop thread only."""
    publish_threadsafe: Callable[[Sequence[FieldValue]], None]
    """The same from another thread (gpiozero callbacks): goes through call_soon_threadsafe."""
    set_available: Callable[[bool, str | None], None]
    """Report that the hardware went away (False, why) or came back (True, None)."""
    now: Callable[[], datetime] = utc_now
    memory: NodeMemory = field(default_factory=VolatileMemory)
    """A little JSON the driver keeps across restarts (``state_dir/nodes/<id>.json``)."""

    def value(self, name: str, value: Value) -> FieldValue:
        """Build a value of field ``name`` stamped now."""
        return FieldValue(name, value, self.now())


class Driver(abc.ABC, Generic[ConfigT]):
    """Base class of every driver (see the module docstring)."""

    kind: ClassVar[str]
    config_model: ClassVar[type[DriverConfig]]
    static_fields: ClassVar[tuple[FieldSpec, ...]] = ()
    """Fields every device of this kind has, for ``hubd drivers``."""
    dynamic_fields: ClassVar[bool] = False
    """True when values of undeclared fields may be published: the hub then adds
    each new field to the node, its type taken from the first value (bounded)."""
    poll_interval: float | None = None
    """Seconds between reads the hub schedules; None for drivers that push."""
    read_timeout: float = 5.0

    def __init__(self, config: ConfigT, ctx: DriverContext) -> None:
        self.config = config
        self.ctx = ctx

    @abc.abstractmethod
    def describe(self) -> NodeSpec:
        """Return the fields this device exposes; pure, may depend on the config."""

    async def start(self) -> None:
        """Acquire the hardware; raise DriverUnavailable if it is absent."""

    @abc.abstractmethod
    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """Return current values of ``fields`` (all fields when empty)."""

    async def write(self, field: str, value: Value) -> None:
        """Set a writable field to an already validated value."""
        raise ControlNotSupported(f"{field} cannot be written", field=field)

    async def stop(self) -> None:
        """Release the hardware; idempotent and safe after a failed start()."""

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the class docstring."""
        doc = (cls.__doc__ or cls.kind).strip()
        return doc.split("\n\n", 1)[0].replace("\n", " ")


AnyDriver = Driver[Any]
