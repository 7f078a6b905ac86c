"""``serial.dsmr``: a Dutch/Belgian/Luxembourg smart meter's P1 port (DSMR 2.2 to 5, e-MUCS)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final

from pydantic import Field, field_validator

from drivers.serial.dsmr_framing import DsmrDecoder
from drivers.serial.dsmr_protocol import Reading, Telegram
from drivers.serial.lines import parse_seconds
from drivers.serial.port import STATUS_FIELDS, ByteSize, Parity, SerialDriver, SerialPortConfig
from hubd.core.driver import DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import InvalidValue

_IDENTITY: Final = frozenset({Category.IDENTITY})
_STATUS: Final = frozenset({Category.STATUS})


def _field(
    name: str,
    kind: FieldType,
    unit: str | None = None,
    categories: frozenset[Category] = frozenset({Category.MOMENTARY}),
) -> FieldSpec:
    return FieldSpec(name=name, type=kind, unit=unit, categories=categories)


def _phases(name: str, unit: str) -> list[FieldSpec]:
    return [_field(f"{name}_l{phase}", FieldType.NUMERIC, unit) for phase in (1, 2, 3)]


def _counters(name: str) -> list[FieldSpec]:
    return [_field(f"{name}_l{phase}", FieldType.INT, categories=_STATUS) for phase in (1, 2, 3)]


# The units are the ones DSMR 4/5 meters send; a meter that sends another prefix of the same
# unit (Wh, W: some Sagemcom and e-MUCS meters) is converted, exactly, to these.
_ELECTRICITY: Final = [
    _field("dsmr_version", FieldType.STRING, categories=_IDENTITY),
    _field("emucs_version", FieldType.STRING, categories=_IDENTITY),
    _field("equipment_id", FieldType.STRING, categories=_IDENTITY),
    _field("timestamp", FieldType.DATETIME),
    *(
        _field(f"energy_{way}_{part}", FieldType.NUMERIC, "kWh")
        for way in ("delivered", "returned")
        for part in ("total", "tariff1", "tariff2")
    ),
    _field("reactive_energy_delivered_total", FieldType.NUMERIC, "kvarh"),
    _field("reactive_energy_returned_total", FieldType.NUMERIC, "kvarh"),
    _field("tariff", FieldType.INT, categories=_STATUS),
    _field("power_delivered", FieldType.NUMERIC, "kW"),
    _field("power_returned", FieldType.NUMERIC, "kW"),
    _field("reactive_power_delivered", FieldType.NUMERIC, "kvar"),
    _field("reactive_power_returned", FieldType.NUMERIC, "kvar"),
    _field("limiter_threshold", FieldType.NUMERIC, "kW", _STATUS),
    _field("breaker_state", FieldType.INT, categories=_STATUS),
    _field("power_failures", FieldType.INT, categories=_STATUS),
    _field("long_power_failures", FieldType.INT, categories=_STATUS),
    *_counters("voltage_sags"),
    *_counters("voltage_swells"),
    _field("text_message_code", FieldType.STRING, categories=_STATUS),
    _field("text_message", FieldType.STRING, categories=_STATUS),
    *_phases("voltage", "V"),
    *_phases("current", "A"),
    *_phases("power_delivered", "kW"),
    *_phases("power_returned", "kW"),
    _field("current_average_demand", FieldType.NUMERIC, "kW"),
    _field("maximum_demand_month", FieldType.NUMERIC, "kW"),
    _field("maximum_demand_month_timestamp", FieldType.DATETIME),
    _field("fuse_threshold_l1", FieldType.NUMERIC, "A", _STATUS),
]

#: M-Bus devices hubd exposes, by the name the protocol module gives them, with their unit.
MBUS_DEVICES: Final = {"gas": "m3", "water": "m3", "hot_water": "m3", "heat": "GJ"}

_MBUS: Final = [
    spec
    for prefix, unit in MBUS_DEVICES.items()
    for spec in (
        _field(f"{prefix}_delivered", FieldType.NUMERIC, unit),
        _field(f"{prefix}_timestamp", FieldType.DATETIME),
        _field(f"{prefix}_equipment_id", FieldType.STRING, categories=_IDENTITY),
        _field(f"{prefix}_device_type", FieldType.INT, categories=_IDENTITY),
        _field(f"{prefix}_valve_state", FieldType.INT, categories=_STATUS),
    )
]

METER_FIELDS: Final = (*_ELECTRICITY, *_MBUS)

# Decimal exponents of the SI prefixes meters use, and the units they combine with.
_PREFIXES: Final = {"k": 3, "M": 6, "G": 9}
_BASE_UNITS: Final = frozenset({"Wh", "varh", "W", "var", "J", "V", "A"})


def _split_unit(unit: str) -> tuple[str, int]:
    """``"kWh"`` -> ``("Wh", 3)``; a unit without a known prefix -> ``(unit, 0)``."""
    prefix, rest = unit[:1], unit[1:]
    if prefix in _PREFIXES and rest in _BASE_UNITS:
        return rest, _PREFIXES[prefix]
    return unit, 0


def convert_unit(value: Decimal, unit: str, wanted: str) -> Decimal | None:
    """Return ``value`` (in ``unit``) in ``wanted``, exactly; None if the units differ in kind."""
    if unit == wanted:
        return value
    base, exponent = _split_unit(unit)
    wanted_base, wanted_exponent = _split_unit(wanted)
    if base != wanted_base:
        return None
    # scaleb moves the decimal point without rounding: 3432829 Wh is 3432.829 kWh.
    return value.scaleb(exponent - wanted_exponent)


class DsmrConfig(SerialPortConfig):
    """Keys of a ``serial.dsmr`` device."""

    baudrate: int = Field(default=115200, gt=0, le=4_000_000, description="115200 (DSMR 4/5)")
    bytesize: ByteSize = Field(default=8, description="8 (DSMR 4/5); 7 for DSMR 2.2/3")
    parity: Parity = Field(default="none", description="none (DSMR 4/5); even for DSMR 2.2/3")
    silence_timeout: float = Field(
        default=60.0, gt=0, description="seconds without data after which the meter is offline"
    )

    @field_validator("silence_timeout", mode="before")
    @classmethod
    def _seconds(cls, raw: object) -> object:
        return parse_seconds(raw)


class DsmrDriver(SerialDriver[DsmrConfig]):
    """A smart meter's P1 port (DSMR 2.2, 3, 4, 5; Belgian/Luxembourg e-MUCS).

    Options: ``port`` (prefer the P1 cable's ``/dev/serial/by-id/...`` path),
    ``baudrate`` (115200), ``bytesize`` (8), ``parity`` (none), ``stopbits`` (1): the
    defaults fit DSMR 4 and 5; DSMR 2.2 and 3 meters need ``baudrate: 9600``,
    ``bytesize: 7``, ``parity: even``.  ``silence_timeout`` (60 s): a meter that sends
    nothing for that long counts as gone (a P1 cable pulled at the meter's end).

    Fields (those the meter sends; named after the OBIS codes they come from):
    ``energy_delivered_tariff1``/``_tariff2``/``_total`` and ``energy_returned_...`` in
    kWh, ``power_delivered``/``power_returned`` (and ``_l1`` to ``_l3``) in kW,
    ``voltage_l1``-``l3`` (V), ``current_l1``-``l3`` (A), ``tariff``, ``timestamp``,
    ``equipment_id``, ``dsmr_version``, power-failure and voltage sag/swell counters,
    e-MUCS demand fields, and the M-Bus meters on the P1 port: ``gas_delivered`` (m3),
    ``gas_timestamp`` (when the gas meter read it), ``water_...`` (m3), ``heat_...``
    (GJ), ``hot_water_...`` (m3).  Units are converted exactly when a meter uses another
    prefix (Wh -> kWh, W -> kW).  Status fields: ``errors`` (telegrams dropped for a
    wrong CRC, cut off or garbled, and objects that could not be read) and
    ``last_error``.  ``hubd drivers`` lists every field with its unit.  A second M-Bus
    meter of the same kind, or one of an unknown kind, is not exposed (logged once).

    Push: every intact telegram (each second on DSMR 5, ten seconds before) is published;
    a telegram with a wrong CRC is dropped whole.  Unplugging the cable makes the node
    offline; hubd reopens the port with backoff until it returns.
    """

    kind = "serial.dsmr"
    config_model = DsmrConfig
    static_fields = (*METER_FIELDS, *STATUS_FIELDS)

    def __init__(self, config: DsmrConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._decoder = DsmrDecoder()
        self._specs = {spec.name: spec for spec in METER_FIELDS}
        self._skipped: set[str] = set()

    @property
    def silence_timeout(self) -> float | None:
        """From the configuration."""
        return self.config.silence_timeout

    def describe(self) -> NodeSpec:
        """Every field a meter may send, with its unit, and the status fields."""
        return NodeSpec(fields=(*METER_FIELDS, *STATUS_FIELDS))

    def _reset_input(self) -> None:
        self._decoder.buffer.clear()

    def _on_data(self, data: bytes) -> None:
        decoder = self._decoder
        rejected, overflows = decoder.errors.total(), decoder.buffer.overflows
        telegrams = decoder.feed(data)
        for _ in range(decoder.buffer.overflows - overflows):
            self._error("too_long", "no end of telegram within the buffer's bound")
        last = decoder.last_error
        for _ in range(decoder.errors.total() - rejected):
            if last is not None:  # only the latest detail is kept; each is counted
                self._error(last.reason, last.detail)
        for telegram in telegrams:
            self._telegram(telegram)

    def _telegram(self, telegram: Telegram) -> None:
        values: list[FieldValue] = []
        for reading in telegram.readings:
            value = self._value(reading)
            if value is not None:
                values.append(self.ctx.value(reading.name, value))
        if telegram.invalid:
            self._error("invalid_object", f"{telegram.invalid} object(s) could not be read")
        self.ctx.logger.debug(
            "telegram %s (DSMR %s): %d value(s)", telegram.header, telegram.version, len(values)
        )
        self._publish(values)

    def _value(self, reading: Reading) -> Value | None:
        spec = self._specs.get(reading.name)
        if spec is None:
            self._skip(reading.name, "hubd does not expose it")
            return None
        raw: object = reading.value
        if spec.type is FieldType.DATETIME and isinstance(raw, str):
            raw = datetime.fromisoformat(raw)
        if isinstance(raw, Decimal) and reading.unit and spec.unit:
            converted = convert_unit(raw, reading.unit, spec.unit)
            if converted is None:
                self._skip(reading.name, f"the meter sends it in {reading.unit}, not {spec.unit}")
                return None
            raw = converted
        try:
            return spec.coerce(raw)
        except InvalidValue as err:
            self._error("bad_value", str(err))
            return None

    def _skip(self, name: str, why: str) -> None:
        if name not in self._skipped:
            self._skipped.add(name)
            self.ctx.logger.info("ignoring the meter's %s: %s", name, why)
