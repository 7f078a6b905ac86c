"""``ble.bthome``: a BTHome v2 sensor (Shelly BLU, pvvx firmware in BTHome mode, ESPHome, DIY)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from pydantic import Field, SecretStr, field_validator

from hubd.core.driver import DriverContext
from hubd.core.model import FieldSpec, FieldType

from .advertisement import Advertisement
from .bthome import _BINARY, _SENSORS, BTHOME_SERVICE_UUID, parse_bthome
from .passive import LAST_SEEN, RSSI, PassiveConfig, PassiveDriver, Reading, measurement_field

__all__ = ["BTHOME_FIELDS", "BTHomeConfig", "BTHomeDriver"]

_NUMBERED: Final = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)_(?P<n>[2-9]|[1-9][0-9]+)$")
_STRING_FIELDS: Final = ("button", "dimmer", "command", "text")


def _field_table() -> dict[str, FieldSpec]:
    """Every field name BTHome defines, with its type and unit (the first unit the spec uses)."""
    table: dict[str, FieldSpec] = {}
    for sensor in _SENSORS.values():
        table.setdefault(sensor.name, measurement_field(sensor.name, sensor.unit))
    for name in _BINARY.values():
        table.setdefault(name, measurement_field(name, None, boolean=True))
    for name in _STRING_FIELDS:
        table[name] = FieldSpec(name=name, type=FieldType.STRING)
    return table


BTHOME_FIELDS: Final = _field_table()
"""Field specs by name; numbered repeats (``temperature_2``) share their base name's."""

_COMMON: Final = ("temperature", "humidity", "battery", "pressure", "illuminance", "button")


def _spec_for(name: str) -> FieldSpec | None:
    spec = BTHOME_FIELDS.get(name)
    if spec is not None:
        return spec
    match = _NUMBERED.match(name)
    if match is None or match["base"] not in BTHOME_FIELDS:
        return None
    base = BTHOME_FIELDS[match["base"]]
    return FieldSpec(name=name, type=base.type, unit=base.unit)


class BTHomeConfig(PassiveConfig):
    """Keys of a ``ble.bthome`` device."""

    bindkey: SecretStr | None = Field(
        default=None, description="32 hex digits, for a device that encrypts its advertisements"
    )
    fields: tuple[str, ...] | None = Field(
        default=None,
        description="the fields to expose (default: every BTHome name; temperature_2 etc. "
        "only when listed)",
    )

    @field_validator("bindkey")
    @classmethod
    def _bindkey(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        text = value.get_secret_value().strip().replace(" ", "").lower()
        if not re.fullmatch(r"[0-9a-f]{32}", text):
            # Never echo the key back into a log or an error message.
            raise ValueError("must be 32 hex digits (16 bytes)")
        return SecretStr(text)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        unknown = [name for name in value if _spec_for(name) is None or name in ("rssi",)]
        if unknown:
            raise ValueError(
                f"not BTHome field names: {', '.join(unknown)} (e.g. {', '.join(_COMMON)})"
            )
        if len(set(value)) != len(value):
            raise ValueError("a field is listed twice")
        return value


class BTHomeDriver(PassiveDriver[BTHomeConfig]):
    """A BTHome v2 sensor, heard passively (service data 0xFCD2).

    Shelly BLU buttons, door and motion sensors, pvvx thermometers in BTHome
    mode, ESPHome and DIY BTHome devices.  Options: ``address``; ``bindkey``
    (32 hex digits) for a device that encrypts; ``timeout`` (seconds without
    an advertisement before the node is offline, default 600); ``fields`` to
    expose fewer names, or repeats such as ``temperature_2``.

    Fields: one per BTHome quantity in lower_snake with its unit
    (``temperature`` °C, ``humidity`` %, ``battery`` %, ``pressure`` hPa,
    ``illuminance`` lx, ``co2`` ppm, ...), binary sensors as booleans
    (``door``, ``motion``, ``battery_low``, ...), button/dimmer events as
    text (``press``, ``long_press``, ``rotate_left``), plus ``rssi`` (dBm)
    and ``last_seen``.  Pushes every new reading.  Encrypted advertisements
    are decrypted with the bindkey; a resent counter is ignored.
    """

    kind = "ble.bthome"
    config_model = BTHomeConfig
    static_fields = (*(BTHOME_FIELDS[name] for name in _COMMON), RSSI, LAST_SEEN)

    def __init__(self, config: BTHomeConfig, ctx: DriverContext) -> None:
        self._mac = bytes.fromhex(config.address.replace(":", ""))
        key = config.bindkey
        self._bindkey = None if key is None else bytes.fromhex(key.get_secret_value())
        self._last_counter: int | None = None
        super().__init__(config, ctx)

    def fields(self) -> Sequence[FieldSpec]:
        """The configured fields, or every BTHome name."""
        names = self.config.fields
        if names is None:
            return tuple(BTHOME_FIELDS.values())
        return tuple(spec for name in names if (spec := _spec_for(name)) is not None)

    def parse(self, advert: Advertisement) -> Reading | None:
        """Decode (decrypt) the 0xFCD2 service data; events become text values."""
        data = advert.service_data.get(BTHOME_SERVICE_UUID)
        if data is None:
            return None
        parsed = parse_bthome(data, mac=self._mac, bindkey=self._bindkey)
        if parsed.counter is not None:
            if parsed.counter == self._last_counter:
                # The same encrypted frame again: a resend, or someone replaying it.
                return None
            self._last_counter = parsed.counter
        texts = dict(parsed.texts)
        texts.update((e.name, e.event) for e in parsed.events if e.event is not None)
        key = (parsed.packet_id, parsed.counter, tuple(parsed.measurements), tuple(texts.items()))
        return Reading(values=parsed.measurements, key=key, texts=texts)
