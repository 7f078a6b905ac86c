"""Parse DSMR/P1 smart-meter telegrams: pure bytes in, named readings out.

A P1 port sends a *telegram* every second (DSMR 5) or ten seconds (DSMR 2.2-4)::

    /ISk5\\2MT382-1000          header: '/', the meter's identification
                                (blank line)
    1-3:0.2.8(50)               COSEM objects: OBIS code, then one or more (value*unit)
    1-0:1.8.1(000004.426*kWh)
    ...
    !6EEE                       '!', then CRC-16 of everything from '/' through '!'

What this module accepts:

* DSMR 4.x and 5.x telegrams, whose CRC is checked (CRC-16/ARC: polynomial 0xA001 reflected,
  initial value 0, four hex digits). One to three digits are accepted as well, because real
  meters have been seen to send the CRC without leading zeros.
* DSMR 2.2 and 3.0 telegrams, which have no CRC (``Telegram.crc_ok`` is ``None``), including
  their gas reading ``0-n:24.3.0``, whose value continues on the next line.
* The common objects of the Belgian/Luxembourg e-MUCS variant (Fluvius): version
  ``0-0:96.1.4``, average and peak demand, breaker state, fuse threshold, and M-Bus readings
  under ``0-n:24.2.3``.

Field names are stable lower_snake (see ``_EMETER`` and ``_MBUS`` below). Numbers are
``Decimal`` parsed from the telegram text, so ``(000123.450*kWh)`` becomes ``Decimal('123.450')``
with unit ``'kWh'``: the unit is always the one the telegram states, never assumed. Counters,
tariff, device type and states are ``int``. Timestamps (``YYMMDDhhmmssX``) become ISO 8601 text;
``X`` is ``S`` (summer time) or ``W`` (winter time) and gives the offset, standard time being
``+01:00`` (NL, BE, LU) unless the caller passes another one. A timestamp without ``S``/``W``
(DSMR 2.2/3 gas) carries no offset, because the telegram does not say whether DST applied.

M-Bus devices (gas, water, heat meters on channels 1-4) are named after their device type
(``0-n:24.1.0``: 3 gas, 4 heat, 6 hot water, 7 water): ``gas_delivered``, ``gas_timestamp``,
``gas_equipment_id``, ``gas_device_type``, ``gas_valve_state``. If two devices have the same
type, the one with an equipment id (then the lower channel) gets the plain name and the other
``gas_<channel>_...``; a device of another or no type is ``mbus<channel>_...``.

Garbage is data, not a crash. ``parse_telegram`` raises only ``DsmrParseError`` (a
``ValueError``) for any input, with ``reason`` one of ``crc``, ``truncated``, ``garbage``,
``too_long``. Inside a telegram, an object it cannot read is skipped and counted in
``Telegram.invalid``; an OBIS code it does not know is skipped and counted in
``Telegram.unknown``. Cutting a byte stream into telegrams is
:mod:`drivers.serial.dsmr_framing`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "MAX_TELEGRAM_BYTES",
    "DsmrParseError",
    "FailureReason",
    "Reading",
    "Telegram",
    "crc16",
    "parse_telegram",
]

#: The largest telegram accepted. Real ones are 0.4-2 KiB; a long power-failure log and four
#: M-Bus devices stay well below this.
MAX_TELEGRAM_BYTES: Final = 8192

FailureReason = Literal["crc", "truncated", "garbage", "too_long"]


class DsmrParseError(ValueError):
    """A byte string is not a usable telegram; ``reason`` says why, for counting."""

    def __init__(self, reason: FailureReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: FailureReason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    """One named value from a telegram, with the unit the telegram gave (if any)."""

    name: str
    value: bool | int | Decimal | str
    unit: str | None = None


@dataclass(frozen=True, slots=True)
class Telegram:
    """A parsed telegram.

    ``crc_ok`` is ``True`` when the CRC matched, ``None`` when the telegram has none (DSMR
    2.2/3), and ``False`` only when ``parse_telegram(..., verify_crc=False)`` was asked not to
    raise on a mismatch.
    """

    header: str
    version: str | None
    readings: tuple[Reading, ...]
    crc_ok: bool | None
    unknown: int = 0
    invalid: int = 0

    def get(self, name: str) -> Reading | None:
        """Return the reading called ``name``, or ``None``."""
        for reading in self.readings:
            if reading.name == name:
                return reading
        return None


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16(data: bytes) -> int:
    """Return the CRC-16/ARC of ``data`` (the DSMR telegram checksum)."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ byte) & 0xFF]
    return crc


# Value kinds of the objects below.
_Kind = Literal["str", "int", "decimal", "hex", "timestamp", "timed", "skip"]

# Electricity-meter objects, by full OBIS code.
_EMETER: Final[dict[str, tuple[str, _Kind]]] = {
    "1-3:0.2.8": ("dsmr_version", "str"),
    "0-0:96.1.4": ("emucs_version", "str"),
    "0-0:1.0.0": ("timestamp", "timestamp"),
    "0-0:96.1.1": ("equipment_id", "hex"),
    "1-0:1.8.0": ("energy_delivered_total", "decimal"),
    "1-0:1.8.1": ("energy_delivered_tariff1", "decimal"),
    "1-0:1.8.2": ("energy_delivered_tariff2", "decimal"),
    "1-0:2.8.0": ("energy_returned_total", "decimal"),
    "1-0:2.8.1": ("energy_returned_tariff1", "decimal"),
    "1-0:2.8.2": ("energy_returned_tariff2", "decimal"),
    "1-0:3.8.0": ("reactive_energy_delivered_total", "decimal"),
    "1-0:4.8.0": ("reactive_energy_returned_total", "decimal"),
    "0-0:96.14.0": ("tariff", "int"),
    "1-0:1.7.0": ("power_delivered", "decimal"),
    "1-0:2.7.0": ("power_returned", "decimal"),
    "1-0:3.7.0": ("reactive_power_delivered", "decimal"),
    "1-0:4.7.0": ("reactive_power_returned", "decimal"),
    "0-0:17.0.0": ("limiter_threshold", "decimal"),
    "0-0:96.3.10": ("breaker_state", "int"),
    "0-0:96.7.21": ("power_failures", "int"),
    "0-0:96.7.9": ("long_power_failures", "int"),
    # Event logs and monthly peak history: lists of variable length with no stable field
    # name per entry, so they are known but not reported.
    "1-0:99.97.0": ("", "skip"),
    "0-0:98.1.0": ("", "skip"),
    "1-0:32.32.0": ("voltage_sags_l1", "int"),
    "1-0:52.32.0": ("voltage_sags_l2", "int"),
    "1-0:72.32.0": ("voltage_sags_l3", "int"),
    "1-0:32.36.0": ("voltage_swells_l1", "int"),
    "1-0:52.36.0": ("voltage_swells_l2", "int"),
    "1-0:72.36.0": ("voltage_swells_l3", "int"),
    "0-0:96.13.1": ("text_message_code", "hex"),
    "0-0:96.13.0": ("text_message", "hex"),
    "1-0:32.7.0": ("voltage_l1", "decimal"),
    "1-0:52.7.0": ("voltage_l2", "decimal"),
    "1-0:72.7.0": ("voltage_l3", "decimal"),
    "1-0:31.7.0": ("current_l1", "decimal"),
    "1-0:51.7.0": ("current_l2", "decimal"),
    "1-0:71.7.0": ("current_l3", "decimal"),
    "1-0:21.7.0": ("power_delivered_l1", "decimal"),
    "1-0:41.7.0": ("power_delivered_l2", "decimal"),
    "1-0:61.7.0": ("power_delivered_l3", "decimal"),
    "1-0:22.7.0": ("power_returned_l1", "decimal"),
    "1-0:42.7.0": ("power_returned_l2", "decimal"),
    "1-0:62.7.0": ("power_returned_l3", "decimal"),
    # e-MUCS (Belgium, Luxembourg).
    "1-0:1.4.0": ("current_average_demand", "decimal"),
    "1-0:1.6.0": ("maximum_demand_month", "timed"),
    "1-0:31.4.0": ("fuse_threshold_l1", "decimal"),
}

# M-Bus objects (OBIS 0-n:C.D.E with channel n >= 1), by C.D.E; names get a device prefix.
_MbusKind = Literal["int", "hex", "reading", "legacy_reading"]
_MBUS: Final[dict[str, tuple[str, _MbusKind]]] = {
    "24.1.0": ("device_type", "int"),
    "96.1.0": ("equipment_id", "hex"),
    "96.1.1": ("equipment_id", "hex"),  # e-MUCS uses 96.1.1 on M-Bus channels
    "24.2.1": ("delivered", "reading"),
    "24.2.3": ("delivered", "reading"),  # e-MUCS: volume not temperature-corrected
    "24.3.0": ("delivered", "legacy_reading"),  # DSMR 2.2/3
    "24.4.0": ("valve_state", "int"),
}

# M-Bus device types (EN 13757-3) with a name of their own.
_MBUS_DEVICE_NAMES: Final = {3: "gas", 4: "heat", 6: "hot_water", 7: "water"}

_OBJECT: Final = re.compile(
    r"(?P<a>\d{1,3})-(?P<b>\d{1,3}):(?P<cde>\d{1,3}\.\d{1,3}\.\d{1,3})(?:\*\d{1,3})?"
    # Values follow directly; DSMR 2.2/3 continue the gas value on the next line.
    r"(?P<values>\([^()\r\n]*\)(?:[ \t]*(?:\r?\n[ \t]*)?\([^()\r\n]*\))*)"
)
_VALUE: Final = re.compile(r"\(([^()\r\n]*)\)")
_SPACE: Final = re.compile(r"\s*")
_NUMBER: Final = re.compile(r"[+-]?\d+(?:\.\d+)?")
_INTEGER: Final = re.compile(r"\d+")
_HEX_EVEN: Final = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_TIMESTAMP: Final = re.compile(r"(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)([SW]?)")
_NOT_TEXT: Final = re.compile(rb"[^\x20-\x7e\r\n\t]")
_CRC_DONE: Final = re.compile(rb"([0-9A-Fa-f]{0,4})\r\n|([0-9A-Fa-f]{4})?")
_CRC_PARTIAL: Final = re.compile(rb"[0-9A-Fa-f]{0,4}\r?")


def parse_telegram(
    data: bytes,
    *,
    verify_crc: bool = True,
    standard_offset: timedelta = timedelta(hours=1),
) -> Telegram:
    """Parse one telegram, from ``/`` through the ``!CRC`` line.

    Raises ``DsmrParseError`` for anything that is not a complete, intact telegram; with
    ``verify_crc=False`` a wrong CRC is reported as ``crc_ok=False`` instead. ``standard_offset``
    is the meter's UTC offset in winter time (``ValueError`` unless under 23 hours).
    """
    if abs(standard_offset) >= timedelta(hours=23):
        raise ValueError("standard_offset must be less than 23 hours")
    if len(data) > MAX_TELEGRAM_BYTES:
        raise DsmrParseError("too_long", f"{len(data)} bytes, at most {MAX_TELEGRAM_BYTES}")
    if not data.startswith(b"/"):
        raise DsmrParseError("garbage", "a telegram starts with '/'")
    end = data.find(b"\n!")
    if end < 0:
        raise DsmrParseError("truncated", "no '!' end line")
    bang = end + 1
    tail = data[bang + 1 :]
    crc_match = _CRC_DONE.fullmatch(tail)
    if crc_match is None:
        if _CRC_PARTIAL.fullmatch(tail):
            raise DsmrParseError("truncated", "the CRC line is incomplete")
        raise DsmrParseError("garbage", "data after the end of the telegram")
    crc_text = crc_match.group(1) or crc_match.group(2)

    crc_ok: bool | None = None
    if crc_text:
        expected = int(crc_text, 16)
        actual = crc16(data[: bang + 1])
        crc_ok = expected == actual
        if not crc_ok and verify_crc:
            raise DsmrParseError("crc", f"telegram says {expected:04X}, data gives {actual:04X}")

    # Checked after the CRC so that line noise in a DSMR 4/5 telegram is reported as a CRC
    # failure, the more telling reason; DSMR 2.2/3 have only this check.
    bad = _NOT_TEXT.search(data, 0, bang)
    if bad is not None:
        raise DsmrParseError("garbage", f"byte 0x{data[bad.start()]:02x} at {bad.start()}")
    if b"/" in data[1:bang]:
        # Two telegram starts: the first was cut off and the rest belongs to another one.
        raise DsmrParseError("garbage", "a second '/' inside the telegram")
    header_end = data.find(b"\r\n", 0, bang)
    if header_end < 0:
        raise DsmrParseError("garbage", "no line break after the header")
    text = data[: bang + 1].decode("ascii")
    return _Builder(standard_offset).build(
        header=text[1:header_end],
        body=text[header_end + 2 : bang],
        crc_ok=crc_ok,
        crc_present=bool(crc_text),
    )


class _Builder:
    """Turn a telegram's object lines into readings (one use per telegram)."""

    def __init__(self, standard_offset: timedelta) -> None:
        self._winter = timezone(standard_offset)
        self._summer = timezone(standard_offset + timedelta(hours=1))
        self._readings: dict[str, Reading] = {}
        self.unknown = 0
        self.invalid = 0

    def build(self, *, header: str, body: str, crc_ok: bool | None, crc_present: bool) -> Telegram:
        objects = self._objects(body)
        prefixes = self._mbus_prefixes(objects)
        for a, b, cde, values in objects:
            if a == 0 and b != 0:
                self._mbus(prefixes[b], cde, values)
            else:
                self._emeter(f"{a}-{b}:{cde}", values)
        dsmr = self._readings.get("dsmr_version")
        emucs = self._readings.get("emucs_version")
        version = str(dsmr.value) if dsmr else str(emucs.value) if emucs else None
        if not crc_present and dsmr and str(dsmr.value).isdigit() and int(str(dsmr.value)) >= 40:
            # DSMR 4 and later always send a CRC; its absence means the end line was mangled.
            raise DsmrParseError("crc", f"DSMR {dsmr.value} telegram without a CRC")
        return Telegram(
            header=header,
            version=version,
            readings=tuple(self._readings.values()),
            crc_ok=crc_ok,
            unknown=self.unknown,
            invalid=self.invalid,
        )

    def _objects(self, body: str) -> list[tuple[int, int, str, list[str]]]:
        objects: list[tuple[int, int, str, list[str]]] = []
        pos = 0
        while True:
            space = _SPACE.match(body, pos)
            pos = space.end() if space else pos
            if pos >= len(body):
                return objects
            match = _OBJECT.match(body, pos)
            if match is None:
                # Skip the rest of the line: one bad line must not hide the others.
                self.invalid += 1
                newline = body.find("\n", pos)
                pos = len(body) if newline < 0 else newline + 1
                continue
            values = _VALUE.findall(match["values"])
            objects.append((int(match["a"]), int(match["b"]), match["cde"], values))
            pos = match.end()

    @staticmethod
    def _mbus_prefixes(objects: list[tuple[int, int, str, list[str]]]) -> dict[int, str]:
        types: dict[int, int | None] = {}
        has_id: dict[int, bool] = {}
        for a, b, cde, values in objects:
            if a != 0 or b == 0:
                continue
            types.setdefault(b, None)
            if cde == "24.1.0" and len(values) == 1 and _INTEGER.fullmatch(values[0]):
                types[b] = int(values[0])
            elif cde in ("96.1.0", "96.1.1") and values and values[0]:
                has_id[b] = True
        prefixes: dict[int, str] = {}
        # A meter with an equipment id is the real one; an empty channel may report the same
        # type with a dummy reading (seen on Iskra AM550 meters), so it must not take the name.
        for channel in sorted(types, key=lambda ch: (not has_id.get(ch, False), ch)):
            kind = _MBUS_DEVICE_NAMES.get(types[channel] or -1)
            if kind is None:
                prefixes[channel] = f"mbus{channel}"
            elif kind in prefixes.values():
                prefixes[channel] = f"{kind}_{channel}"
            else:
                prefixes[channel] = kind
        return prefixes

    def _emeter(self, obis: str, values: list[str]) -> None:
        spec = _EMETER.get(obis)
        if spec is None:
            self.unknown += 1
            return
        name, kind = spec
        if kind == "skip":
            return
        if kind == "timed":
            if len(values) != 2:
                self.invalid += 1
                return
            self._value(f"{name}_timestamp", "timestamp", values[0])
            self._value(name, "decimal", values[1])
            return
        if len(values) != 1:
            self.invalid += 1
            return
        self._value(name, kind, values[0])

    def _mbus(self, prefix: str, cde: str, values: list[str]) -> None:
        spec = _MBUS.get(cde)
        if spec is None:
            self.unknown += 1
            return
        suffix, kind = spec
        name = f"{prefix}_{suffix}"
        if kind == "reading" and len(values) == 2:
            self._value(f"{prefix}_timestamp", "timestamp", values[0])
            self._value(name, "decimal", values[1])
        elif kind == "legacy_reading" and len(values) == 7:
            # (timestamp)(status)(period)(count)(OBIS of the value)(unit) then (value)
            self._value(f"{prefix}_timestamp", "timestamp", values[0])
            self._value(name, "decimal", f"{values[6]}*{values[5]}" if values[5] else values[6])
        elif kind in ("int", "hex") and len(values) == 1:
            self._value(name, "int" if kind == "int" else "hex", values[0])
        else:
            self.invalid += 1

    def _value(self, name: str, kind: _Kind, raw: str) -> None:
        text, star, unit_text = raw.partition("*")
        text = text.strip()
        unit = (unit_text.strip() or None) if star else None
        value: int | Decimal | str | None = None
        if kind == "decimal":
            value = Decimal(text) if _NUMBER.fullmatch(text) else None
        elif kind == "int":
            value = int(text) if _INTEGER.fullmatch(text) and not star else None
        elif kind == "timestamp":
            value = None if star else self._timestamp(text)
        elif kind == "hex":
            value = None if star else _hex_text(text)
        elif not star:
            value = text
        if value is None or name in self._readings:
            self.invalid += 1
            return
        self._readings[name] = Reading(name, value, unit)

    def _timestamp(self, text: str) -> str | None:
        match = _TIMESTAMP.fullmatch(text)
        if match is None:
            return None
        yy, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
        # Two-digit years: meters exist since the 2000s, and 70xxxx is the "no value" filler
        # some meters send (1970-01-01, the Unix epoch), so 70-99 are read as 19xx.
        year = 1900 + yy if yy >= 70 else 2000 + yy
        flag = match.group(7)
        tz = {"S": self._summer, "W": self._winter}.get(flag)
        try:
            stamp = datetime(year, month, day, hour, minute, second, tzinfo=tz)
        except ValueError:
            return None
        return stamp.isoformat()


def _hex_text(text: str) -> str:
    """Decode hex-encoded ASCII (equipment ids, text messages); keep anything else as sent."""
    if _HEX_EVEN.fullmatch(text):
        decoded = bytes.fromhex(text)
        if all(0x20 <= byte <= 0x7E for byte in decoded):
            return decoded.decode("ascii")
    return text
