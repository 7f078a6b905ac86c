"""XEP-0347 meta tags and the claim code an owner scans: pure data, no I/O.

A Thing registers its meta tags with a Thing registry; whoever presents the
same tags (``KEY``, a secret only the hub and its owner see, among them)
claims it.  The tags travel as a string (XEP-0347 §3.8): ``IoTDisco``, then
for each tag ``;NAME:VALUE`` (``;#NAME:VALUE`` when numeric), with ``;`` and
``\\`` in values escaped by a backslash.  Waher's newer URI form
(``iotdisco:``, registered with IANA) writes ``NAME=VALUE`` pairs joined by
``;``, percent-encoded, with ``R=`` naming the registry.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from hubd.errors import BadRequest

KEY = "KEY"
MAX_NAME = 32
MAX_VALUE = 128
_NAME = re.compile(r"^[^:#\s;=]{1,32}$")


@dataclass(frozen=True, slots=True)
class MetaTag:
    """One meta tag: a string or a number (``<str>`` / ``<num>`` on the wire)."""

    name: str
    value: str | float

    @property
    def numeric(self) -> bool:
        """True for a ``<num>`` tag."""
        return not isinstance(self.value, str)

    @property
    def text(self) -> str:
        """The value as written on the wire (numbers without a needless ``.0``)."""
        if isinstance(self.value, str):
            return self.value
        return format_number(self.value)


def format_number(value: float) -> str:
    """``1.2`` -> ``1.2``, ``3.0`` -> ``3`` (XEP-0347 numbers are xs:double)."""
    return str(int(value)) if value.is_integer() else repr(value)


def check_tag(name: str, value: object) -> None:
    """Raise ValueError when a tag breaks XEP-0347's limits (§5.2)."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r}: a tag name is 1-{MAX_NAME} characters without ':', '#', ';', '=' or spaces"
        )
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{name}: a tag value is a string or a number")
    if isinstance(value, str) and len(value) > MAX_VALUE:
        raise ValueError(f"{name}: a string value is at most {MAX_VALUE} characters")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{name}: a number must be finite")


def meta_tags(meta: Mapping[str, str | float], key: str) -> tuple[MetaTag, ...]:
    """The tags the hub registers: the configured ones in order, then ``KEY``."""
    tags = [MetaTag(name.upper(), value) for name, value in meta.items() if name.upper() != KEY]
    return (*tags, MetaTag(KEY, key))


def claim_string(tags: Iterable[MetaTag]) -> str:
    """The ``IoTDisco;...`` string of XEP-0347 §3.8, to show as a QR code."""
    parts = ["IoTDisco"]
    for tag in tags:
        escaped = tag.text.replace("\\", "\\\\").replace(";", "\\;")
        parts.append(f"{'#' if tag.numeric else ''}{tag.name}:{escaped}")
    return ";".join(parts)


def parse_claim_string(text: str) -> tuple[MetaTag, ...]:
    """The tags of an ``IoTDisco;...`` string; raises BadRequest when it is not one."""
    if not text.startswith("IoTDisco;"):
        raise BadRequest("a claim string starts with 'IoTDisco;'")
    tags: list[MetaTag] = []
    for part in _split_escaped(text[len("IoTDisco;") :]):
        name, sep, value = part.partition(":")
        numeric = name.startswith("#")
        name = name.removeprefix("#")
        if not sep or not _NAME.match(name):
            raise BadRequest(f"not a NAME:VALUE tag: {part!r}")
        if numeric:
            try:
                tags.append(MetaTag(name, float(value)))
            except ValueError:
                raise BadRequest(f"{name}: not a number: {value!r}") from None
        else:
            tags.append(MetaTag(name, value))
    return tuple(tags)


def _split_escaped(text: str) -> list[str]:
    """Split at unescaped ``;``, undoing the backslash escapes."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ";":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        raise BadRequest("a claim string cannot end with a lone backslash")
    parts.append("".join(current))
    return parts


def iotdisco_uri(tags: Iterable[MetaTag], registry: str | None) -> str:
    """The ``iotdisco:`` URI of the same tags, ``R=`` naming the registry when known."""
    pairs = [
        f"{'#' if tag.numeric else ''}{quote(tag.name, safe='')}={quote(tag.text, safe='')}"
        for tag in tags
    ]
    if registry:
        pairs.append(f"R={quote(registry, safe='@')}")
    return "iotdisco:" + ";".join(pairs)


def parse_iotdisco_uri(uri: str) -> dict[str, str]:
    """``NAME -> value`` of an ``iotdisco:`` URI (``#`` kept on numeric names)."""
    if not uri.startswith("iotdisco:"):
        raise BadRequest("an iotdisco URI starts with 'iotdisco:'")
    out: dict[str, str] = {}
    for pair in uri[len("iotdisco:") :].split(";"):
        name, sep, value = pair.partition("=")
        if not sep:
            raise BadRequest(f"not a NAME=VALUE pair: {pair!r}")
        out[unquote(name)] = unquote(value)
    return out
