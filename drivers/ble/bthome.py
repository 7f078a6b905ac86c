"""Parser of BTHome v2 advertisements (service data of UUID 0xFCD2).

BTHome (https://bthome.io/format/) is the open advertisement format of the
Shelly BLU devices, the pvvx thermometer firmware in its BTHome mode, ESPHome
and many DIY sensors.  The service data starts with a device-information byte
(encryption flag, trigger-based flag, format version) followed by objects, each
an object id and a value whose size the id fixes (text, raw and command objects
carry their own length byte).  :func:`parse_bthome` knows every object id of
the spec: sensors, binary sensors, button/dimmer events, commands, packet id,
text/raw, timestamp and the device-information objects.

Names are the spec's property names in lower_snake (``temperature``,
``humidity``, ``pm25``, ``uv_index``).  Where a binary sensor shares its name
with a numeric sensor, the binary one gets a name saying what True means so
that both can be fields of one device: ``battery_low`` (0x15),
``power_on`` (0x10), ``gas_detected`` (0x1C), ``moisture_detected`` (0x20).
Several objects of the same name are numbered in order of appearance as the
spec says: ``temperature``, ``temperature_2``, ``temperature_3``.

Unknown object ids: the size of an object is known only from its id, so the
parser cannot skip an id it does not know.  Like the spec asks of receivers, it
stops there and keeps what it read before; ``BTHomeAdvert.unknown_object_id``
says which id stopped it.  (The spec asks devices to send objects in
ascending id order, which puts most objects added by newer spec versions last.)

Encryption (https://bthome.io/encryption/): AES-CCM with the device's 16-byte
bindkey and a 4-byte MIC; the nonce is the device's MAC (6 bytes, in the order
it is written, ``A4:C1:38:...`` -> ``a4 c1 38 ...``), the UUID in little-endian
(``d2 fc``), the device-information byte and the 4-byte counter sent before the
MIC.  The counter is returned so that a receiver can refuse replays (it must
grow); this module does not keep state, so checking it is the driver's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from .measurement import Measurement, scale

__all__ = [
    "BTHOME_SERVICE_UUID",
    "BTHomeAdvert",
    "BTHomeDecryptionError",
    "BTHomeError",
    "BTHomeEvent",
    "BTHomeParseError",
    "parse_bthome",
]

BTHOME_SERVICE_UUID: Final = "0000fcd2-0000-1000-8000-00805f9b34fb"
"""The 128-bit form of UUID 0xFCD2, as bleak keys ``service_data``."""

_UUID_LE: Final = b"\xd2\xfc"
_KEY_LEN: Final = 16
_MAC_LEN: Final = 6
_COUNTER_LEN: Final = 4
_MIC_LEN: Final = 4
_VERSION: Final = 2


class BTHomeError(ValueError):
    """Base of the errors :func:`parse_bthome` raises for a payload it cannot read."""


class BTHomeParseError(BTHomeError):
    """The payload is empty, truncated or not BTHome version 2."""


class BTHomeDecryptionError(BTHomeError):
    """An encrypted payload could not be decrypted.

    The bindkey or MAC is missing, or the MIC does not match (wrong bindkey,
    wrong MAC, or a corrupted or forged advertisement).
    """


@dataclass(frozen=True, slots=True)
class BTHomeEvent:
    """One event object: a button press, a dimmer turn or a command.

    ``name`` is ``button``, ``dimmer`` or ``command``, numbered like the
    measurements (``button_2`` is the device's second button).  ``event`` is
    the spec's event type (``press``, ``long_press``, ``rotate_left``,
    ``step_up`` ...) or None for the spec's "no event" placeholder that lets a
    device report only its second button; an event id this module does not
    know is ``unknown_0x..``.  ``steps`` is the step count of a dimmer turn or
    of a ``step_up``/``step_down`` command; ``arguments`` are a command's raw
    argument bytes, whose meaning is opcode- and manufacturer-specific.
    """

    name: str
    event: str | None
    steps: int | None = None
    arguments: bytes = b""


@dataclass(frozen=True, slots=True)
class BTHomeAdvert:
    """Everything one BTHome advertisement carried.

    ``measurements`` holds the sensors and binary sensors (booleans) in payload
    order.  ``texts`` and ``raws`` hold the variable-length text (0x53) and raw
    (0x54) objects by their numbered names.  ``packet_id`` (0x00) lets a
    receiver drop repeats of one reading.  ``counter`` is the encryption
    counter (None when not encrypted).  ``unknown_object_id`` is the first
    object id not in the spec, where parsing stopped (see the module docs).
    """

    measurements: list[Measurement]
    packet_id: int | None
    encrypted: bool
    trigger_based: bool
    events: list[BTHomeEvent] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    raws: dict[str, bytes] = field(default_factory=dict)
    counter: int | None = None
    device_type_id: int | None = None
    firmware_version: str | None = None
    unknown_object_id: int | None = None


@dataclass(frozen=True, slots=True)
class _Sensor:
    """A numeric object: little-endian integer of ``size`` bytes times ``factor``."""

    name: str
    size: int
    signed: bool
    factor: Decimal | None  # None: the integer itself is the value (factor 1)
    unit: str | None


def _u(name: str, size: int, factor: str | None, unit: str | None) -> _Sensor:
    return _Sensor(name, size, False, None if factor is None else Decimal(factor), unit)


def _s(name: str, size: int, factor: str | None, unit: str | None) -> _Sensor:
    return _Sensor(name, size, True, None if factor is None else Decimal(factor), unit)


# The sensor table of https://bthome.io/format/ ("Sensor data").  Factors are
# written as strings so that the Decimal keeps exactly the spec's decimals.
_SENSORS: Final[Mapping[int, _Sensor]] = {
    0x01: _u("battery", 1, None, "%"),
    0x02: _s("temperature", 2, "0.01", "°C"),
    0x03: _u("humidity", 2, "0.01", "%"),
    0x04: _u("pressure", 3, "0.01", "hPa"),
    0x05: _u("illuminance", 3, "0.01", "lx"),
    0x06: _u("mass", 2, "0.01", "kg"),
    0x07: _u("mass", 2, "0.01", "lb"),
    0x08: _s("dewpoint", 2, "0.01", "°C"),
    0x09: _u("count", 1, None, None),
    0x0A: _u("energy", 3, "0.001", "kWh"),
    0x0B: _u("power", 3, "0.01", "W"),
    0x0C: _u("voltage", 2, "0.001", "V"),
    0x0D: _u("pm25", 2, None, "µg/m³"),
    0x0E: _u("pm10", 2, None, "µg/m³"),
    0x12: _u("co2", 2, None, "ppm"),
    0x13: _u("tvoc", 2, None, "µg/m³"),
    0x14: _u("moisture", 2, "0.01", "%"),
    0x2E: _u("humidity", 1, None, "%"),
    0x2F: _u("moisture", 1, None, "%"),
    0x3D: _u("count", 2, None, None),
    0x3E: _u("count", 4, None, None),
    0x3F: _s("rotation", 2, "0.1", "°"),
    0x40: _u("distance", 2, None, "mm"),
    0x41: _u("distance", 2, "0.1", "m"),
    0x42: _u("duration", 3, "0.001", "s"),
    0x43: _u("current", 2, "0.001", "A"),
    0x44: _u("speed", 2, "0.01", "m/s"),
    0x45: _s("temperature", 2, "0.1", "°C"),
    0x46: _u("uv_index", 1, "0.1", None),
    0x47: _u("volume", 2, "0.1", "L"),
    0x48: _u("volume", 2, None, "mL"),
    0x49: _u("volume_flow_rate", 2, "0.001", "m³/h"),
    0x4A: _u("voltage", 2, "0.1", "V"),
    0x4B: _u("gas", 3, "0.001", "m³"),
    0x4C: _u("gas", 4, "0.001", "m³"),
    0x4D: _u("energy", 4, "0.001", "kWh"),
    0x4E: _u("volume", 4, "0.001", "L"),
    0x4F: _u("water", 4, "0.001", "L"),
    # Seconds since 1970-01-01T00:00:00Z; left as the integer because a
    # Measurement holds numbers, and a unit of "s" would read as a duration.
    0x50: _u("timestamp", 4, None, None),
    0x51: _u("acceleration", 2, "0.001", "m/s²"),
    0x52: _u("gyroscope", 2, "0.001", "°/s"),
    0x55: _u("volume_storage", 4, "0.001", "L"),
    0x56: _u("conductivity", 2, None, "µS/cm"),
    0x57: _s("temperature", 1, None, "°C"),
    0x58: _s("temperature", 1, "0.35", "°C"),
    0x59: _s("count", 1, None, None),
    0x5A: _s("count", 2, None, None),
    0x5B: _s("count", 4, None, None),
    0x5C: _s("power", 4, "0.01", "W"),
    0x5D: _s("current", 2, "0.001", "A"),
    0x5E: _u("direction", 2, "0.01", "°"),
    0x5F: _u("precipitation", 2, "0.1", "mm"),
    0x60: _u("channel", 1, None, None),
    0x61: _u("rotational_speed", 2, None, "rpm"),
    0x62: _s("speed", 4, "0.000001", "m/s"),
    0x63: _s("acceleration", 4, "0.000001", "m/s²"),
    0x64: _u("light_level", 1, None, None),  # 0 dark, 1 twilight, 2 bright
    0x65: _u("settings_revision", 1, None, None),
}

# The binary sensor table ("Binary Sensor data"): one byte, 1 = True.
_BINARY: Final[Mapping[int, str]] = {
    0x0F: "generic_boolean",
    0x10: "power_on",  # the spec's "power"; renamed: 0x0B/0x5C are power in W
    0x11: "opening",
    0x15: "battery_low",  # the spec's "battery"; renamed: 0x01 is battery in %
    0x16: "battery_charging",
    0x17: "carbon_monoxide",
    0x18: "cold",
    0x19: "connectivity",
    0x1A: "door",
    0x1B: "garage_door",
    0x1C: "gas_detected",  # the spec's "gas"; renamed: 0x4B/0x4C are gas in m³
    0x1D: "heat",
    0x1E: "light",
    0x1F: "lock",
    0x20: "moisture_detected",  # the spec's "moisture"; renamed: 0x14/0x2F are %
    0x21: "motion",
    0x22: "moving",
    0x23: "occupancy",
    0x24: "plug",
    0x25: "presence",
    0x26: "problem",
    0x27: "running",
    0x28: "safety",
    0x29: "smoke",
    0x2A: "sound",
    0x2B: "tamper",
    0x2C: "vibration",
    0x2D: "window",
}

_PACKET_ID: Final = 0x00
_BUTTON: Final = 0x3A
_COMMAND: Final = 0x3B
_DIMMER: Final = 0x3C
_TEXT: Final = 0x53
_RAW: Final = 0x54
_DEVICE_TYPE_ID: Final = 0xF0
_FIRMWARE_4: Final = 0xF1
_FIRMWARE_3: Final = 0xF2

_BUTTON_EVENTS: Final[Mapping[int, str | None]] = {
    0x00: None,
    0x01: "press",
    0x02: "double_press",
    0x03: "triple_press",
    0x04: "long_press",
    0x05: "long_double_press",
    0x06: "long_triple_press",
    0x80: "hold_press",
}
_DIMMER_EVENTS: Final[Mapping[int, str | None]] = {
    0x00: None,
    0x01: "rotate_left",
    0x02: "rotate_right",
}
_COMMAND_OPCODES: Final[Mapping[int, str]] = {
    0x00: "off",
    0x01: "on",
    0x02: "toggle",
    0x03: "step_up",
    0x04: "step_down",
}
_STEP_OPCODES: Final = frozenset({0x03, 0x04})


def parse_bthome(
    service_data: bytes, *, mac: bytes | None = None, bindkey: bytes | None = None
) -> BTHomeAdvert:
    """Parse the service data of UUID 0xFCD2, starting with the device-information byte.

    ``mac`` (6 bytes, as written: ``bytes.fromhex("A4C138123456")``) and
    ``bindkey`` (16 bytes) are needed only for encrypted advertisements.

    Raises :class:`BTHomeParseError` for an empty, truncated or non-v2 payload,
    :class:`BTHomeDecryptionError` when an encrypted payload cannot be
    decrypted, and plain :class:`ValueError` for a ``mac`` or ``bindkey`` of the
    wrong length (a configuration mistake rather than a bad payload).
    """
    if bindkey is not None and len(bindkey) != _KEY_LEN:
        raise ValueError(f"a BTHome bindkey is {_KEY_LEN} bytes, got {len(bindkey)}")
    if mac is not None and len(mac) != _MAC_LEN:
        raise ValueError(f"a MAC address is {_MAC_LEN} bytes, got {len(mac)}")
    if not service_data:
        raise BTHomeParseError("empty BTHome payload: no device information byte")

    info = service_data[0]
    version = info >> 5
    if version != _VERSION:
        # v1 used other UUIDs (0x181C/0x181E) and another layout.
        raise BTHomeParseError(f"BTHome version {version} is not supported (only 2)")
    encrypted = bool(info & 0x01)
    trigger_based = bool(info & 0x04)

    counter: int | None = None
    if encrypted:
        payload, counter = _decrypt(service_data, mac, bindkey)
    else:
        payload = service_data[1:]

    reader = _ObjectReader(payload)
    reader.run()
    return BTHomeAdvert(
        measurements=reader.measurements,
        packet_id=reader.packet_id,
        encrypted=encrypted,
        trigger_based=trigger_based,
        events=reader.events,
        texts=reader.texts,
        raws=reader.raws,
        counter=counter,
        device_type_id=reader.device_type_id,
        firmware_version=reader.firmware_version,
        unknown_object_id=reader.unknown_object_id,
    )


def _decrypt(data: bytes, mac: bytes | None, bindkey: bytes | None) -> tuple[bytes, int]:
    """Return the plaintext objects and the counter of an encrypted payload."""
    # info byte + ciphertext (may be empty) + counter + MIC
    if len(data) < 1 + _COUNTER_LEN + _MIC_LEN:
        raise BTHomeParseError(
            f"encrypted BTHome payload of {len(data)} bytes is too short for counter and MIC"
        )
    if bindkey is None:
        raise BTHomeDecryptionError("encrypted BTHome advertisement and no bindkey configured")
    if mac is None:
        raise BTHomeDecryptionError("decrypting BTHome needs the device's MAC address")
    ciphertext = data[1 : -(_COUNTER_LEN + _MIC_LEN)]
    counter_bytes = data[-(_COUNTER_LEN + _MIC_LEN) : -_MIC_LEN]
    mic = data[-_MIC_LEN:]
    nonce = mac + _UUID_LE + data[:1] + counter_bytes
    # Imported here, on the first encrypted advertisement: cryptography costs ~6 MiB
    # of resident memory, which a hub with unencrypted (or no) BTHome devices never pays.
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESCCM

    try:
        plaintext = AESCCM(bindkey, tag_length=_MIC_LEN).decrypt(nonce, ciphertext + mic, None)
    except InvalidTag:
        raise BTHomeDecryptionError(
            "BTHome MIC mismatch: wrong bindkey or MAC, or a corrupted advertisement"
        ) from None
    return plaintext, int.from_bytes(counter_bytes, "little")


class _ObjectReader:
    """Walks the objects of a decrypted payload and sorts them into their kinds."""

    def __init__(self, payload: bytes) -> None:
        self._data = payload
        self._pos = 0
        self._seen: dict[str, int] = {}
        self.measurements: list[Measurement] = []
        self.events: list[BTHomeEvent] = []
        self.texts: dict[str, str] = {}
        self.raws: dict[str, bytes] = {}
        self.packet_id: int | None = None
        self.device_type_id: int | None = None
        self.firmware_version: str | None = None
        self.unknown_object_id: int | None = None

    def run(self) -> None:
        while self._pos < len(self._data):
            object_id = self._data[self._pos]
            self._pos += 1
            if not self._read_object(object_id):
                self.unknown_object_id = object_id
                return

    def _read_object(self, object_id: int) -> bool:
        """Read the value of one object; False if the id is unknown."""
        sensor = _SENSORS.get(object_id)
        if sensor is not None:
            raw = int.from_bytes(self._take(object_id, sensor.size), "little", signed=sensor.signed)
            value: int | Decimal = raw if sensor.factor is None else scale(raw, sensor.factor)
            self.measurements.append(Measurement(self._name(sensor.name), value, sensor.unit))
            return True
        binary = _BINARY.get(object_id)
        if binary is not None:
            state = self._take(object_id, 1)[0] != 0
            self.measurements.append(Measurement(self._name(binary), state, None))
            return True
        if object_id == _PACKET_ID:
            packet_id = self._take(object_id, 1)[0]
            if self.packet_id is None:
                self.packet_id = packet_id
        elif object_id == _BUTTON:
            self._event("button", _BUTTON_EVENTS, self._take(object_id, 1)[0], None)
        elif object_id == _DIMMER:
            event_id, steps = self._take(object_id, 2)
            self._event("dimmer", _DIMMER_EVENTS, event_id, steps)
        elif object_id == _COMMAND:
            self._command()
        elif object_id == _TEXT:
            text = self._take(object_id, self._take(object_id, 1)[0])
            # A mangled text should not cost the readings around it.
            self.texts[self._name("text")] = text.decode("utf-8", errors="replace")
        elif object_id == _RAW:
            self.raws[self._name("raw")] = self._take(object_id, self._take(object_id, 1)[0])
        elif object_id == _DEVICE_TYPE_ID:
            self.device_type_id = int.from_bytes(self._take(object_id, 2), "little")
        elif object_id in (_FIRMWARE_4, _FIRMWARE_3):
            size = 4 if object_id == _FIRMWARE_4 else 3
            # Little-endian: the last byte is the major version.
            parts = reversed(self._take(object_id, size))
            self.firmware_version = ".".join(str(part) for part in parts)
        else:
            return False
        return True

    def _event(
        self, name: str, table: Mapping[int, str | None], event_id: int, steps: int | None
    ) -> None:
        event = table.get(event_id, f"unknown_{event_id:#04x}")
        self.events.append(BTHomeEvent(self._name(name), event, steps if event else None))

    def _command(self) -> None:
        # Length byte: high 3 bits reserved, low 5 bits = argument length;
        # then the opcode and the arguments.
        arg_len = self._take(_COMMAND, 1)[0] & 0x1F
        opcode = self._take(_COMMAND, 1)[0]
        arguments = self._take(_COMMAND, arg_len)
        event = _COMMAND_OPCODES.get(opcode, f"unknown_{opcode:#04x}")
        steps = arguments[0] if opcode in _STEP_OPCODES and len(arguments) == 1 else None
        self.events.append(BTHomeEvent(self._name("command"), event, steps, arguments))

    def _take(self, object_id: int, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):
            raise BTHomeParseError(
                f"BTHome object {object_id:#04x} truncated: needs {size} bytes, "
                f"{len(self._data) - self._pos} left"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def _name(self, base: str) -> str:
        """``base`` the first time, then ``base_2``, ``base_3`` ... (the spec's postfix)."""
        count = self._seen.get(base, 0) + 1
        self._seen[base] = count
        return base if count == 1 else f"{base}_{count}"
