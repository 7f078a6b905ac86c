"""Value codecs of ``ble.gatt``: the bytes of a GATT characteristic <-> a field value.

Pure, no I/O.  A characteristic is configured with a ``format``:

* ``uint8`` ... ``int32`` (and ``uint24``/``int24``): an integer of that size in
  ``byteorder`` (default little, as GATT uses), multiplied by ``scale``
  (a decimal, default 1) into a numeric field: ``int16`` with scale 0.01 turns
  ``2a 09`` into ``23.46``;
* ``float32``/``float64``: IEEE 754, also times ``scale``;
* ``bool``: the first byte, zero or not;
* ``utf8``: text (trailing NUL bytes dropped);
* ``bytes``: the raw value as a hex string (``0a1bff``).

Writing does the reverse and refuses a value the format cannot hold (out of
range, or not a whole multiple of ``scale``) with InvalidValue.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from hubd.core.model import FieldSpec, FieldType, Value
from hubd.errors import InvalidValue

__all__ = ["Codec", "Format", "full_uuid"]

Format = Literal[
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint24",
    "int24",
    "uint32",
    "int32",
    "float32",
    "float64",
    "bool",
    "utf8",
    "bytes",
]

_INTS: Final[dict[str, tuple[int, bool]]] = {
    "uint8": (1, False),
    "int8": (1, True),
    "uint16": (2, False),
    "int16": (2, True),
    "uint24": (3, False),
    "int24": (3, True),
    "uint32": (4, False),
    "int32": (4, True),
}
_FLOATS: Final[dict[str, tuple[int, str, int]]] = {
    # size, struct code, significant digits that survive the round trip
    "float32": (4, "f", 7),
    "float64": (8, "d", 17),
}
_BASE_UUID: Final = "-0000-1000-8000-00805f9b34fb"
_UUID128: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def full_uuid(text: str) -> str:
    """Return a UUID as 128 bits in lower case; ``2a6e`` and ``0x2A6E`` are the Bluetooth base's."""
    value = text.strip().lower().removeprefix("0x")
    if re.fullmatch(r"[0-9a-f]{4}", value):
        return f"0000{value}{_BASE_UUID}"
    if re.fullmatch(r"[0-9a-f]{8}", value):
        return f"{value}{_BASE_UUID}"
    if _UUID128.match(value):
        return value
    raise ValueError(f"not a UUID (2a6e, or 128 bits with dashes): {text!r}")


@dataclass(frozen=True, slots=True)
class Codec:
    """How the bytes of one characteristic map to one field."""

    format: Format = "bytes"
    byteorder: Literal["little", "big"] = "little"
    scale: Decimal = Decimal(1)

    @property
    def field_type(self) -> FieldType:
        """The type of the field this codec fills."""
        if self.format in _INTS or self.format in _FLOATS:
            return FieldType.NUMERIC
        if self.format == "bool":
            return FieldType.BOOLEAN
        return FieldType.STRING

    def field_spec(self, name: str, *, unit: str | None, writable: bool) -> FieldSpec:
        """The field description, with the range an integer format can hold."""
        minimum = maximum = None
        if self.format in _INTS:
            size, signed = _INTS[self.format]
            low = -(1 << (8 * size - 1)) if signed else 0
            high = (1 << (8 * size - 1)) - 1 if signed else (1 << (8 * size)) - 1
            ends = sorted((Decimal(low) * self.scale, Decimal(high) * self.scale))
            minimum, maximum = ends[0], ends[1]
        return FieldSpec(
            name=name,
            type=self.field_type,
            unit=unit if self.field_type is FieldType.NUMERIC else None,
            writable=writable,
            minimum=minimum,
            maximum=maximum,
        )

    def decode(self, data: bytes) -> Value:
        """The value the bytes hold; raise ValueError if they do not fit the format."""
        fmt = self.format
        if fmt in _INTS:
            size, signed = _INTS[fmt]
            self._check_size(data, size)
            return self._scaled(Decimal(int.from_bytes(data, self.byteorder, signed=signed)))
        if fmt in _FLOATS:
            size, code, digits = _FLOATS[fmt]
            self._check_size(data, size)
            order = "<" if self.byteorder == "little" else ">"
            (number,) = struct.unpack(order + code, data)
            value = Decimal(f"{number:.{digits}g}")
            if not value.is_finite():
                raise ValueError(f"{fmt} value is not a number: {number!r}")
            return self._scaled(value)
        if fmt == "bool":
            if not data:
                raise ValueError("empty value for a bool")
            return data[0] != 0
        if fmt == "utf8":
            try:
                return data.rstrip(b"\0").decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"not UTF-8: {err}") from None
        return data.hex()

    def encode(self, value: Value) -> bytes:
        """The bytes to write for ``value`` (already checked against the field's type)."""
        fmt = self.format
        try:
            if fmt in _INTS:
                size, signed = _INTS[fmt]
                raw = self._unscaled(value)
                if raw != raw.to_integral_value():
                    raise InvalidValue(f"{value} is not a multiple of the scale {self.scale}")
                return int(raw).to_bytes(size, self.byteorder, signed=signed)
            if fmt in _FLOATS:
                _, code, _ = _FLOATS[fmt]
                order = "<" if self.byteorder == "little" else ">"
                return struct.pack(order + code, float(self._unscaled(value)))
        except OverflowError:
            raise InvalidValue(f"{value} does not fit in {fmt}") from None
        except (InvalidOperation, struct.error) as err:
            raise InvalidValue(f"{value} cannot be written as {fmt}: {err}") from None
        if fmt == "bool":
            return b"\x01" if value else b"\x00"
        if not isinstance(value, str):
            raise InvalidValue(f"expected text for a {fmt} characteristic, got {value!r}")
        if fmt == "utf8":
            return value.encode("utf-8")
        try:
            return bytes.fromhex(value.replace(" ", ""))
        except ValueError:
            raise InvalidValue(f"not hex: {value!r}") from None

    def _check_size(self, data: bytes, size: int) -> None:
        if len(data) != size:
            raise ValueError(f"{self.format} needs {size} byte(s), got {len(data)}: {data.hex()}")

    def _scaled(self, value: Decimal) -> Decimal:
        return value if self.scale == 1 else value * self.scale

    def _unscaled(self, value: Value) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidValue(f"expected a number, got {value!r}")
        return Decimal(value) / self.scale
