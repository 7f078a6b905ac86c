"""What every passive advertisement driver shares: subscribe, parse, publish, time out.

A passive sensor only broadcasts; hubd listens through the shared scanner.
A subclass says which fields it has and how one advertisement becomes
measurements (:meth:`PassiveDriver.parse`); this base class does the rest:

* ``rssi`` (dBm) and ``last_seen`` (dateTime, a status field) on every node;
* publication only of what is new (a sensor resends one reading many times),
  and at least every :data:`REPUBLISH_AFTER` seconds so ``last_seen`` stays fresh;
* availability: a node is online once a readable advertisement arrived and
  goes offline after ``timeout`` seconds without one.  Going offline makes
  the supervisor restart the driver; a restarted driver is online again only
  when the device is heard again, so a sleepy sensor shows "not seen for N
  min" with its ``last_seen`` value and does not flap.
"""

from __future__ import annotations

import abc
import asyncio
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, Final, TypeVar

from pydantic import Field, field_validator

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import DriverUnavailable

from .advertisement import Advertisement, normalize_address
from .measurement import Measurement
from .scanner import SharedScanner, Subscription, shared_scanner

__all__ = [
    "LAST_SEEN",
    "RSSI",
    "PassiveConfig",
    "PassiveDriver",
    "Reading",
    "measurement_field",
]

REPUBLISH_AFTER: Final = 60.0
FIRST_SEEN_WAIT: Final = 20.0
"""At most this long (below the supervisor's start timeout) start() waits to hear the device."""

RSSI = FieldSpec(
    name="rssi",
    type=FieldType.NUMERIC,
    unit="dBm",
    description="signal strength of the last advertisement",
)
LAST_SEEN = FieldSpec(
    name="last_seen",
    type=FieldType.DATETIME,
    categories=frozenset({Category.STATUS}),
    description="when the last readable advertisement arrived",
)


def measurement_field(name: str, unit: str | None, *, boolean: bool = False) -> FieldSpec:
    """The field of one measured quantity: numeric with a unit, or boolean."""
    if boolean:
        return FieldSpec(name=name, type=FieldType.BOOLEAN)
    return FieldSpec(name=name, type=FieldType.NUMERIC, unit=unit)


class PassiveConfig(DriverConfig):
    """Keys of every passive BLE sensor."""

    address: str = Field(description="the device's Bluetooth address, AA:BB:CC:DD:EE:FF")
    timeout: float = Field(
        default=600.0,
        ge=10,
        le=86400,
        description="seconds without an advertisement before the node goes offline",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalize_address(value)

    def claims(self) -> Sequence[str]:
        """One node per device address."""
        return (f"ble:{self.address}",)


ConfigT = TypeVar("ConfigT", bound=PassiveConfig)


@dataclass(frozen=True, slots=True)
class Reading:
    """What one advertisement said: values by field, and a key that repeats with them."""

    values: Sequence[Measurement]
    key: Hashable
    """Equal keys mean the same reading resent (a packet id, a sequence number)."""
    texts: Mapping[str, str] = field(default_factory=dict)
    """Text values (a button's event) by field name."""


class PassiveDriver(Driver[ConfigT]):
    """Base of the advertisement drivers (see the module docstring)."""

    measurement_fields: ClassVar[tuple[FieldSpec, ...]] = ()

    def __init__(self, config: ConfigT, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._spec = NodeSpec(fields=(*self.fields(), RSSI, LAST_SEEN))
        self._scanner: SharedScanner | None = None
        self._subscription: Subscription | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._seen = asyncio.Event()
        self._values: dict[str, FieldValue] = {}
        self._last_seen: datetime | None = None
        self._last_key: Hashable = None
        self._last_publish = -math.inf
        self._last_error: str | None = None
        self._warned: set[str] = set()

    # -- what a subclass provides -------------------------------------------------

    def fields(self) -> Sequence[FieldSpec]:
        """The measured fields of this device (``rssi`` and ``last_seen`` are added)."""
        return self.measurement_fields

    @abc.abstractmethod
    def parse(self, advert: Advertisement) -> Reading | None:
        """Turn an advertisement into a reading; None if it carries nothing of ours.

        Raise ValueError (the parsers' errors are) for a payload that is ours but unreadable.
        """

    # -- the driver interface -----------------------------------------------------

    def describe(self) -> NodeSpec:
        """The measured fields, ``rssi`` and ``last_seen``."""
        return self._spec

    async def start(self) -> None:
        """Subscribe to the device's advertisements; online once it has been heard."""
        self._seen.clear()
        self._scanner = shared_scanner(self.ctx)
        self._subscription = await self._scanner.subscribe(self.config.address, self._on_advert)
        if self._recently_seen():
            # Heard recently (a restart after a scanner hiccup): online at once, and
            # offline when the rest of the timeout passes in silence, not a full one later.
            assert self._last_seen is not None
            elapsed = (self.ctx.now() - self._last_seen).total_seconds()
            self._arm_timer(self.config.timeout - elapsed)
            return
        wait = min(self.config.timeout, FIRST_SEEN_WAIT)
        try:
            async with asyncio.timeout(wait):
                await self._seen.wait()
        except TimeoutError:
            reason = self._absent_reason()
            await self._unsubscribe()
            raise DriverUnavailable(reason) from None

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The latest values heard (a passive device cannot be asked)."""
        return [v for name, v in self._values.items() if not fields or name in fields]

    async def stop(self) -> None:
        """Unsubscribe and forget the timer; keeps what was heard for the next start."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self._unsubscribe()

    # -- internals ----------------------------------------------------------------

    async def _unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None and self._scanner is not None:
            await self._scanner.unsubscribe(subscription)

    def _recently_seen(self) -> bool:
        if self._last_seen is None:
            return False
        return (self.ctx.now() - self._last_seen).total_seconds() < self.config.timeout

    def _absent_reason(self) -> str:
        if self._last_seen is None:
            reason = "not seen since hubd started"
        else:
            minutes = (self.ctx.now() - self._last_seen).total_seconds() / 60
            reason = f"not seen for {_minutes(minutes)}"
        if self._last_error is not None:
            reason += f" (last advertisement unreadable: {self._last_error})"
        return reason

    def _arm_timer(self, delay: float | None = None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            self.config.timeout if delay is None else max(delay, 0.0), self._expired
        )

    def _expired(self) -> None:
        self._timer = None
        self.ctx.set_available(False, self._absent_reason())

    def _on_advert(self, advert: Advertisement) -> None:
        try:
            reading = self.parse(advert)
        except ValueError as err:
            self._last_error = str(err)
            if self._last_error not in self._warned:
                # Once per distinct problem: a device repeats its advertisement every second.
                self._warned.add(self._last_error)
                self.ctx.logger.warning("unreadable advertisement: %s", err)
            return
        if reading is None:
            return
        now = self.ctx.now()
        self._last_error = None
        self._last_seen = now
        self._seen.set()
        self._arm_timer()
        values = [FieldValue("last_seen", now, now)]
        if advert.rssi is not None:
            values.append(FieldValue("rssi", Decimal(advert.rssi), now))
        fresh = reading.key != self._last_key
        for measurement in reading.values:
            value = self._to_field_value(measurement, now)
            if value is not None:
                values.append(value)
        for name, text in reading.texts.items():
            spec = self._spec.get(name)
            if spec is not None and spec.type is FieldType.STRING:
                values.append(FieldValue(name, text, now))
        for value in values:
            self._values[value.name] = value
        monotonic = asyncio.get_running_loop().time()
        if fresh or monotonic - self._last_publish >= REPUBLISH_AFTER:
            self._last_key = reading.key
            self._last_publish = monotonic
            self.ctx.publish(values)

    def _to_field_value(self, measurement: Measurement, now: datetime) -> FieldValue | None:
        spec = self._spec.get(measurement.name)
        if spec is None:
            return None
        raw = measurement.value
        value: Value = raw
        if spec.type is FieldType.NUMERIC:
            if isinstance(raw, bool):
                return None
            value = Decimal(raw)
            if spec.unit != measurement.unit:
                converted = convert_unit(value, measurement.unit, spec.unit)
                if converted is None:
                    self.ctx.logger.debug(
                        "%s in %s cannot be converted to %s",
                        measurement.name,
                        measurement.unit,
                        spec.unit,
                    )
                    return None
                value = converted
        elif spec.type is FieldType.BOOLEAN and not isinstance(value, bool):
            return None
        return FieldValue(measurement.name, value, now)


# Exact factors between the units one quantity may come in (BTHome sends
# distance in mm or m, volume in L or mL, mass in kg or lb).
_CONVERSIONS: Final[dict[tuple[str, str], Decimal]] = {
    ("m", "mm"): Decimal(1000),
    ("mm", "m"): Decimal("0.001"),
    ("mL", "L"): Decimal("0.001"),
    ("L", "mL"): Decimal(1000),
    ("lb", "kg"): Decimal("0.45359237"),
}


def convert_unit(value: Decimal, unit: str | None, target: str | None) -> Decimal | None:
    """Return ``value`` in ``unit`` converted to ``target``, or None if there is no exact factor."""
    if unit == target:
        return value
    if unit is None or target is None:
        return None
    factor = _CONVERSIONS.get((unit, target))
    return None if factor is None else value * factor


def _minutes(minutes: float) -> str:
    if minutes < 1:
        return "less than a minute"
    if minutes < 120:
        return f"{int(minutes)} min"
    return f"{minutes / 60:.1f} h"
