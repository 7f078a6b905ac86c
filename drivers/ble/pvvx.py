"""Parser of the pvvx and ATC1441 thermometer advertisements (service data of UUID 0x181A).

The Xiaomi LYWSD03MMC and its relatives (CGG1, MHO-C401, ...) flashed with
the custom firmware of pvvx (https://github.com/pvvx/ATC_MiThermometer) or
its ancestor by atc1441 advertise their readings as service data of UUID
0x181A ("Environmental Sensing") in one of two layouts told apart by length:

pvvx "custom" format, 15 bytes, little-endian::

    MAC[6] (reversed: least significant byte first)  int16 temperature x0.01 °C
    uint16 humidity x0.01 %  uint16 battery mV  uint8 battery %
    uint8 measurement counter  uint8 flags

ATC1441 format, 13 bytes, big-endian::

    MAC[6] (in the written order)  int16 temperature x0.1 °C  uint8 humidity %
    uint8 battery %  uint16 battery mV  uint8 frame counter

The firmware can also send BTHome (UUID 0xFCD2, see :mod:`drivers.ble.bthome`)
or encrypted pvvx payloads (8 or 11 bytes); those are not this parser's.

Fields: ``temperature`` (°C), ``humidity`` (%), ``battery`` (%), ``voltage``
(the battery's, V) and ``packet_id`` (the counter, which repeats while the
firmware resends one measurement, so a driver can drop duplicates).  The pvvx
flags give ``reed_switch`` (bit 0: the reed-switch/GPIO input),
``trigger_output`` (bit 1: the state of the GPIO_TRG output),
``temperature_trigger`` (bit 3) and ``humidity_trigger`` (bit 4); bit 2 is a
configuration bit (output driven by the triggers), not a reading.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from .measurement import Measurement, scale

__all__ = [
    "ATC1441_LENGTH",
    "PVVX_LENGTH",
    "PVVX_SERVICE_UUID",
    "PvvxParseError",
    "parse_pvvx",
    "pvvx_mac",
]

PVVX_SERVICE_UUID: Final = "0000181a-0000-1000-8000-00805f9b34fb"
"""The 128-bit form of UUID 0x181A, as bleak keys ``service_data``."""

PVVX_LENGTH: Final = 15
ATC1441_LENGTH: Final = 13

_HUNDREDTH: Final = Decimal("0.01")
_TENTH: Final = Decimal("0.1")
_MILLI: Final = Decimal("0.001")


class PvvxParseError(ValueError):
    """The service data is neither the 15-byte pvvx nor the 13-byte ATC1441 format."""


def parse_pvvx(service_data: bytes) -> list[Measurement]:
    """Parse the service data of UUID 0x181A in the pvvx custom or the ATC1441 format.

    The format is chosen by length; any other length raises :class:`PvvxParseError`.
    """
    if len(service_data) == PVVX_LENGTH:
        return _parse_custom(service_data)
    if len(service_data) == ATC1441_LENGTH:
        return _parse_atc1441(service_data)
    raise PvvxParseError(
        f"0x181A service data of {len(service_data)} bytes: expected {PVVX_LENGTH} (pvvx) "
        f"or {ATC1441_LENGTH} (ATC1441); encrypted pvvx payloads are not supported"
    )


def pvvx_mac(service_data: bytes) -> str:
    """The MAC address the payload carries, as ``A4:C1:38:12:34:56``.

    Useful where the scanner shows a random or OS-specific address (macOS).
    Raises :class:`PvvxParseError` like :func:`parse_pvvx` for a wrong length.
    """
    if len(service_data) == PVVX_LENGTH:
        mac = service_data[5::-1]  # sent least significant byte first
    elif len(service_data) == ATC1441_LENGTH:
        mac = service_data[:6]
    else:
        raise PvvxParseError(f"0x181A service data of {len(service_data)} bytes")
    return ":".join(f"{byte:02X}" for byte in mac)


def _parse_custom(data: bytes) -> list[Measurement]:
    temperature = int.from_bytes(data[6:8], "little", signed=True)
    humidity = int.from_bytes(data[8:10], "little")
    battery_mv = int.from_bytes(data[10:12], "little")
    battery, counter, flags = data[12], data[13], data[14]
    return [
        Measurement("temperature", scale(temperature, _HUNDREDTH), "°C"),
        Measurement("humidity", scale(humidity, _HUNDREDTH), "%"),
        Measurement("battery", battery, "%"),
        Measurement("voltage", scale(battery_mv, _MILLI), "V"),
        Measurement("packet_id", counter, None),
        Measurement("reed_switch", bool(flags & 0x01), None),
        Measurement("trigger_output", bool(flags & 0x02), None),
        Measurement("temperature_trigger", bool(flags & 0x08), None),
        Measurement("humidity_trigger", bool(flags & 0x10), None),
    ]


def _parse_atc1441(data: bytes) -> list[Measurement]:
    temperature = int.from_bytes(data[6:8], "big", signed=True)
    humidity, battery = data[8], data[9]
    battery_mv = int.from_bytes(data[10:12], "big")
    counter = data[12]
    return [
        Measurement("temperature", scale(temperature, _TENTH), "°C"),
        Measurement("humidity", humidity, "%"),
        Measurement("battery", battery, "%"),
        Measurement("voltage", scale(battery_mv, _MILLI), "V"),
        Measurement("packet_id", counter, None),
    ]
