"""The reading type shared by the BLE advertisement parsers.

A parser turns one advertisement into a list of :class:`Measurement`: one per
quantity, named in lower_snake (``temperature``, ``humidity``, ``battery``) as
the hubd configuration contract wants field names.  Numbers with a fractional
scale are :class:`~decimal.Decimal` computed exactly from the transmitted
integer, so 2345 at a factor of 0.01 is ``Decimal("23.45")`` and never the
binary float 23.449999....  A quantity sent without a scale (battery %, a
count) stays an ``int``; a binary sensor is a ``bool``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal

__all__ = ["Measurement", "rssi_measurement", "scale"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading of one quantity: ``Measurement("temperature", Decimal("23.45"), "°C")``."""

    name: str
    value: bool | int | Decimal
    unit: str | None


# A private context, so that a caller who lowered the precision of the thread's
# default decimal context cannot make a parser round; 40 digits hold any
# product of a 32-bit integer and the factors used by the formats.
_EXACT = Context(prec=40)


def scale(raw: int, factor: Decimal) -> Decimal:
    """Return ``raw * factor`` exactly, keeping the factor's number of decimals.

    ``scale(2345, Decimal("0.01")) == Decimal("23.45")`` and
    ``scale(4860, Decimal("0.005"))`` is ``Decimal("24.300")``.
    """
    return _EXACT.multiply(Decimal(raw), factor)


def rssi_measurement(rssi: int) -> Measurement:
    """The received signal strength of an advertisement as the ``rssi`` field in dBm.

    The payload parsers cannot know it (the radio measures it), so the drivers
    add it from the scanner's report with this helper.
    """
    return Measurement("rssi", rssi, "dBm")
