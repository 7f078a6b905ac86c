"""One received advertisement, and its line in a replay file (the public JSON Lines format).

The format is documented in the configuration contract; the recorder writes
it and the replay backend reads it, both through this module, so that the two
cannot drift apart::

    {"t": 0.0, "address": "A4:C1:38:12:34:56", "rssi": -61, "name": "ATC_123456",
     "service_uuids": ["0000fcd2-0000-1000-8000-00805f9b34fb"],
     "service_data": {"0000fcd2-0000-1000-8000-00805f9b34fb": "40 01 5c 02 0a09 03 bf13"},
     "manufacturer_data": {}}

``t`` is seconds since the start of the recording; ``service_data`` keys are
full 128-bit UUIDs, ``manufacturer_data`` keys company ids as decimal strings;
values are hex, spaces allowed.  Only ``t`` and ``address`` are required.

No bleak here: the replay backend must work where bleak cannot be imported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "Advertisement",
    "ReplayFormatError",
    "decode_line",
    "encode_line",
    "normalize_address",
]

_MAC: Final = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_UUID128: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_KEYS: Final = frozenset(
    {"t", "address", "rssi", "name", "service_uuids", "service_data", "manufacturer_data"}
)


class ReplayFormatError(ValueError):
    """A line of a replay file does not follow the format (the message says why)."""


def normalize_address(address: str) -> str:
    """Return a MAC address as ``A4:C1:38:12:34:56``; raise ValueError if it is not one."""
    text = address.strip().upper().replace("-", ":")
    if not _MAC.match(text):
        raise ValueError(f"not a Bluetooth address (AA:BB:CC:DD:EE:FF): {address!r}")
    return text


@dataclass(frozen=True, slots=True)
class Advertisement:
    """What one advertisement (or scan response) of one device carried.

    ``service_data`` is keyed by 128-bit UUID in lower case and
    ``manufacturer_data`` by company id, as bleak reports them.  ``device`` is
    the backend's handle of the device (bleak's ``BLEDevice``), needed to
    connect to it; None for a replayed advertisement.
    """

    address: str
    rssi: int | None = None
    name: str | None = None
    service_uuids: tuple[str, ...] = ()
    service_data: Mapping[str, bytes] = field(default_factory=dict)
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)
    device: object | None = field(default=None, compare=False, repr=False)


def encode_line(t: float, advert: Advertisement) -> str:
    """Return the JSON line of ``advert`` received ``t`` seconds into a recording."""
    record = {
        "t": round(t, 3),
        "address": advert.address,
        "rssi": advert.rssi,
        "name": advert.name,
        "service_uuids": list(advert.service_uuids),
        "service_data": {uuid: data.hex() for uuid, data in advert.service_data.items()},
        "manufacturer_data": {
            str(company): data.hex() for company, data in advert.manufacturer_data.items()
        },
    }
    return json.dumps(record, ensure_ascii=False)


def decode_line(text: str) -> tuple[float, Advertisement]:
    """Parse one line into (t, advertisement); raise ReplayFormatError saying what is wrong."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReplayFormatError(f"not JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(record, dict):
        raise ReplayFormatError("each line must be a JSON object")
    unknown = sorted(set(record) - _KEYS)
    if unknown:
        raise ReplayFormatError(f"unknown key(s) {', '.join(unknown)} (allowed: {_allowed()})")
    t = record.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float) or t < 0:
        raise ReplayFormatError("t: must be a number of seconds >= 0")
    address = record.get("address")
    if not isinstance(address, str):
        raise ReplayFormatError("address: required, a string like A4:C1:38:12:34:56")
    try:
        address = normalize_address(address)
    except ValueError as err:
        raise ReplayFormatError(f"address: {err}") from None
    rssi = record.get("rssi")
    if rssi is not None and (isinstance(rssi, bool) or not isinstance(rssi, int)):
        raise ReplayFormatError("rssi: must be an integer (dBm) or null")
    name = record.get("name")
    if name is not None and not isinstance(name, str):
        raise ReplayFormatError("name: must be a string or null")
    uuids = record.get("service_uuids", [])
    if not isinstance(uuids, list) or not all(isinstance(u, str) for u in uuids):
        raise ReplayFormatError("service_uuids: must be a list of UUID strings")
    service_data = {
        _uuid(key, "service_data"): _hex(value, f"service_data[{key}]")
        for key, value in _mapping(record.get("service_data", {}), "service_data").items()
    }
    manufacturer_data = {
        _company(key): _hex(value, f"manufacturer_data[{key}]")
        for key, value in _mapping(record.get("manufacturer_data", {}), "manufacturer_data").items()
    }
    advert = Advertisement(
        address=address,
        rssi=rssi,
        name=name,
        service_uuids=tuple(_uuid(u, "service_uuids") for u in uuids),
        service_data=service_data,
        manufacturer_data=manufacturer_data,
    )
    return float(t), advert


def _allowed() -> str:
    return ", ".join(sorted(_KEYS))


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReplayFormatError(f"{key}: must be an object")
    return value


def _uuid(value: str, key: str) -> str:
    text = value.strip().lower()
    if not _UUID128.match(text):
        raise ReplayFormatError(f"{key}: {value!r} is not a full 128-bit UUID")
    return text


def _company(value: str) -> int:
    if not value.isdigit() or int(value) > 0xFFFF:
        raise ReplayFormatError(
            f"manufacturer_data: key {value!r} must be a company id in decimal (0-65535)"
        )
    return int(value)


def _hex(value: Any, key: str) -> bytes:
    if not isinstance(value, str):
        raise ReplayFormatError(f"{key}: must be a hex string")
    try:
        return bytes.fromhex(value.replace(" ", ""))
    except ValueError:
        raise ReplayFormatError(f"{key}: {value!r} is not hex") from None
