"""Parser of RuuviTag advertisements in data format 5 (RAWv2).

RuuviTags send their readings as manufacturer data of Ruuvi Innovations
(company id 0x0499).  Format 5 (https://docs.ruuvi.com/communication/
bluetooth-advertisements/data-format-5-rawv2) is 24 bytes, big-endian::

    0      format (5)
    1-2    temperature, int16, 0.005 °C         not available: 0x8000
    3-4    humidity, uint16, 0.0025 %           not available: 0xFFFF
    5-6    pressure, uint16, Pa - 50000         not available: 0xFFFF
    7-12   acceleration x, y, z, int16, mG      not available: 0x8000
    13-14  power: 11 bits battery mV - 1600     not available: 2047
                   5 bits tx power (dBm + 40)/2 not available: 31
    15     movement counter, uint8              not available: 255
    16-17  measurement sequence, uint16         not available: 65535
    18-23  MAC                                  not available: all ones

Fields: ``temperature`` (°C), ``humidity`` (%), ``pressure`` (hPa),
``acceleration_x``/``_y``/``_z`` (mG), ``voltage`` (the battery's, V),
``tx_power`` (dBm), ``movement_counter`` and ``measurement_sequence``.  A
quantity the tag reports as "not available" is left out of the list rather
than given a made-up value.  The MAC is not a reading; :func:`ruuvi_mac`
returns it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from .measurement import Measurement, scale

__all__ = [
    "RUUVI_COMPANY_ID",
    "RUUVI_FORMAT_5_LENGTH",
    "RuuviParseError",
    "parse_ruuvi",
    "ruuvi_mac",
]

RUUVI_COMPANY_ID: Final = 0x0499
"""Ruuvi Innovations' Bluetooth company id, the key of bleak's ``manufacturer_data``."""

RUUVI_FORMAT_5_LENGTH: Final = 24

_FORMAT_5: Final = 5
_INT16_NA: Final = -0x8000
_UINT16_NA: Final = 0xFFFF
_BATTERY_NA: Final = 0x7FF
_TX_POWER_NA: Final = 0x1F
_MOVEMENT_NA: Final = 0xFF
_MAC_NA: Final = b"\xff" * 6

_TEMPERATURE_STEP: Final = Decimal("0.005")
_HUMIDITY_STEP: Final = Decimal("0.0025")
_PRESSURE_OFFSET_PA: Final = 50_000
_BATTERY_OFFSET_MV: Final = 1600


class RuuviParseError(ValueError):
    """The manufacturer data is not a 24-byte Ruuvi data format 5 payload."""


def parse_ruuvi(manufacturer_data: bytes) -> list[Measurement]:
    """Parse Ruuvi manufacturer data (company id 0x0499 already stripped) in format 5.

    Raises :class:`RuuviParseError` for another data format or a length other
    than 24 bytes.
    """
    data = _check(manufacturer_data)
    measurements: list[Measurement] = []

    temperature = _int16(data, 1)
    if temperature != _INT16_NA:
        measurements.append(Measurement("temperature", scale(temperature, _TEMPERATURE_STEP), "°C"))
    humidity = _uint16(data, 3)
    if humidity != _UINT16_NA:
        measurements.append(Measurement("humidity", scale(humidity, _HUMIDITY_STEP), "%"))
    pressure = _uint16(data, 5)
    if pressure != _UINT16_NA:
        # Pa -> hPa is a shift of the decimal point, exact in Decimal.
        hpa = Decimal(pressure + _PRESSURE_OFFSET_PA).scaleb(-2)
        measurements.append(Measurement("pressure", hpa, "hPa"))
    for axis, offset in (("x", 7), ("y", 9), ("z", 11)):
        acceleration = _int16(data, offset)
        if acceleration != _INT16_NA:
            measurements.append(Measurement(f"acceleration_{axis}", acceleration, "mG"))

    power = _uint16(data, 13)
    battery, tx_power = power >> 5, power & 0x1F
    if battery != _BATTERY_NA:
        volts = Decimal(battery + _BATTERY_OFFSET_MV).scaleb(-3)
        measurements.append(Measurement("voltage", volts, "V"))
    if tx_power != _TX_POWER_NA:
        measurements.append(Measurement("tx_power", -40 + 2 * tx_power, "dBm"))

    movement = data[15]
    if movement != _MOVEMENT_NA:
        measurements.append(Measurement("movement_counter", movement, None))
    sequence = _uint16(data, 16)
    if sequence != _UINT16_NA:
        measurements.append(Measurement("measurement_sequence", sequence, None))
    return measurements


def ruuvi_mac(manufacturer_data: bytes) -> str | None:
    """The MAC address in a format 5 payload as ``CB:B8:33:4C:88:4F``; None if not available."""
    mac = _check(manufacturer_data)[18:24]
    if mac == _MAC_NA:
        return None
    return ":".join(f"{byte:02X}" for byte in mac)


def _check(data: bytes) -> bytes:
    if not data:
        raise RuuviParseError("empty Ruuvi manufacturer data")
    if data[0] != _FORMAT_5:
        raise RuuviParseError(f"Ruuvi data format {data[0]} is not supported (only 5)")
    if len(data) != RUUVI_FORMAT_5_LENGTH:
        raise RuuviParseError(
            f"Ruuvi data format 5 is {RUUVI_FORMAT_5_LENGTH} bytes, got {len(data)}"
        )
    return data


def _int16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big", signed=True)


def _uint16(data: bytes, offset: int) -> int:
    return int.from_bytes(data[offset : offset + 2], "big")
