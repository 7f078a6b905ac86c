"""XEP-0323 (sensor data) wire format: ElementTree elements <-> hubd's model.

Pure: no slixmpp, no I/O, no asyncio.  The slixmpp plugin hands ``stanza.xml``
to the parsers and appends the builders' elements to its stanzas.

Liberal on input, conservative on output (digest §9): requests may carry
unknown attributes, unknown children and tokens, which are ignored, and the
pre-v0.3 ``timeSpan`` and the spec-example typo ``identification`` are read.
Output always names every quality flag, writes ``unit`` on every numeric
field, and keeps decimals exactly as the driver gave them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import TypeVar
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.model import (
    Category,
    FieldSpec,
    FieldType,
    FieldValue,
    Quality,
    Value,
    format_lexical,
    parse_lexical,
)
from hubd.errors import BadRequest

NS_SENSORDATA = "urn:xmpp:iot:sensordata"

_T = TypeVar("_T")

HISTORICAL = frozenset(c for c in Category if c.value.startswith("historical"))

# The v0.5 example writes identification='true' where the schema says identity.
_CATEGORY_ALIASES = {"identification": Category.IDENTITY}

# timeSpan is the pre-v0.3 name of duration, still sent by slixmpp's plugin.
_TYPE_ALIASES = {"timeSpan": FieldType.DURATION}

_INT_BITS = {FieldType.INT: 32, FieldType.LONG: 64}


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A node as XEP-0323/0325/0326 address it: (sourceId, cacheType, nodeId)."""

    node_id: str
    source_id: str | None = None
    cache_type: str | None = None


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """A parsed ``<req/>``.

    ``categories`` empty means every category; ``all='true'`` yields every
    category and ``historical='true'`` every historical one, so callers only
    need :meth:`wants`.  ``fields`` and ``nodes`` empty mean "all".
    Timestamps are as sent: one without a zone stays naive.
    """

    seqnr: int
    categories: frozenset[Category]
    nodes: tuple[NodeRef, ...]
    fields: frozenset[str]
    from_: datetime | None
    to: datetime | None
    when: datetime | None

    def wants(self, categories: frozenset[Category]) -> bool:
        """Whether a field of these categories answers the request (a union, §1.5)."""
        return not self.categories or bool(self.categories & categories)


@dataclass(frozen=True, slots=True)
class NodeReadings:
    """Values of one node to put in a ``<fields/>`` message, with their specs."""

    node: NodeRef
    values: Sequence[tuple[FieldSpec, FieldValue]]


@dataclass(frozen=True, slots=True)
class ParsedField:
    """One typed field element read from a ``<fields/>`` message.

    ``lexical`` is the value attribute as written; ``name`` is the wire name,
    which other devices need not write in lower_snake.
    """

    name: str
    type: FieldType
    value: Value
    lexical: str
    timestamp: datetime
    categories: frozenset[Category]
    quality: frozenset[Quality]
    unit: str | None = None
    data_type: str | None = None
    writable: bool | None = None
    module: str | None = None
    string_ids: str | None = None

    def as_field_value(self) -> FieldValue:
        """The model value (name, value, timestamp, quality)."""
        return FieldValue(self.name, self.value, self.timestamp, self.quality)


# --- helpers shared with control_xml ------------------------------------------


def qname(namespace: str, local: str) -> str:
    """The ElementTree (Clark notation) name of ``local`` in ``namespace``."""
    return f"{{{namespace}}}{local}"


def local_name(elem: Element, namespace: str) -> str | None:
    """The local name of ``elem`` if it lies in ``namespace``, else None."""
    prefix = f"{{{namespace}}}"
    tag = elem.tag
    if isinstance(tag, str) and tag.startswith(prefix):
        return tag[len(prefix) :]
    return None


def convert(where: str, parse: Callable[[str], _T], text: str) -> _T:
    """Run an xsd parser, turning any failure into BadRequest naming ``where``."""
    try:
        return parse(text)
    # ArithmeticError covers decimal and datetime overflow on absurd input.
    except (ValueError, ArithmeticError) as err:
        raise BadRequest(f"{where}: {err}") from None


def require(elem: Element, attr: str, where: str) -> str:
    """The value of a required, non-empty attribute, or BadRequest."""
    value = elem.get(attr)
    if value is None:
        raise BadRequest(f"{where}: missing attribute {attr!r}")
    if not value.strip():
        raise BadRequest(f"{where}: attribute {attr!r} is empty")
    return value


def parse_seqnr(elem: Element, where: str) -> int:
    """The required xs:int ``seqnr`` attribute."""
    text = require(elem, "seqnr", where)
    return convert(f"{where}: seqnr", partial(xsd.parse_int, bits=32), text)


def parse_bool_attr(elem: Element, attr: str, where: str) -> bool:
    """An optional xs:boolean attribute (absent means false)."""
    text = elem.get(attr)
    if text is None:
        return False
    return convert(f"{where}: {attr}", xsd.parse_boolean, text)


def _optional_bool(elem: Element, attr: str, where: str) -> bool | None:
    text = elem.get(attr)
    return None if text is None else convert(f"{where}: {attr}", xsd.parse_boolean, text)


def parse_node_ref(elem: Element, where: str) -> NodeRef:
    """A ``<node nodeId sourceId? cacheType?/>``; empty optional ids count as absent."""
    node_id = require(elem, "nodeId", f"{where}: node")
    return NodeRef(node_id, elem.get("sourceId") or None, elem.get("cacheType") or None)


def node_ref_attrs(node: NodeRef) -> dict[str, str]:
    """The attributes that address ``node`` on the wire."""
    attrs = {"nodeId": node.node_id}
    if node.source_id is not None:
        attrs["sourceId"] = node.source_id
    if node.cache_type is not None:
        attrs["cacheType"] = node.cache_type
    return attrs


def format_value(kind: FieldType, value: Value) -> str:
    """The XML Schema lexical form of ``value`` as a field of type ``kind``."""
    return format_lexical(kind, value)


def parse_value(kind: FieldType, text: str, where: str) -> Value:
    """Parse the lexical ``text`` of a value of type ``kind``, or BadRequest."""
    return convert(where, partial(parse_lexical, kind), text)


# --- requests -----------------------------------------------------------------


def parse_req(elem: Element) -> ReadRequest:
    """Parse a ``<req/>`` element, or raise BadRequest saying what is wrong."""
    _expect(elem, "req")
    seqnr = parse_seqnr(elem, "req")
    nodes: list[NodeRef] = []
    fields: set[str] = set()
    for child in elem:
        name = local_name(child, NS_SENSORDATA)
        if name == "node":
            nodes.append(parse_node_ref(child, "req"))
        elif name == "field":
            fields.add(require(child, "name", "req: field"))
    from_ = _optional_datetime(elem, "from")
    to = _optional_datetime(elem, "to")
    _check_interval(from_, to)
    return ReadRequest(
        seqnr=seqnr,
        categories=requested_categories(elem),
        nodes=tuple(nodes),
        fields=frozenset(fields),
        from_=from_,
        to=to,
        when=_optional_datetime(elem, "when"),
    )


def parse_cancel(elem: Element) -> int:
    """Parse a ``<cancel seqnr/>`` element and return its sequence number."""
    _expect(elem, "cancel")
    return parse_seqnr(elem, "cancel")


def _expect(elem: Element, name: str) -> None:
    if local_name(elem, NS_SENSORDATA) != name:
        raise BadRequest(f"expected <{name} xmlns='{NS_SENSORDATA}'>, got {elem.tag!r}")


def requested_categories(elem: Element) -> frozenset[Category]:
    """The categories a request asks for (``all``, ``historical`` and each flag)."""
    if parse_bool_attr(elem, "all", "req"):
        return frozenset(Category)
    wanted = {c for c in Category if parse_bool_attr(elem, c.value, "req")}
    for alias, category in _CATEGORY_ALIASES.items():
        if parse_bool_attr(elem, alias, "req"):
            wanted.add(category)
    if parse_bool_attr(elem, "historical", "req"):
        wanted |= HISTORICAL
    return frozenset(wanted)


def _optional_datetime(elem: Element, attr: str) -> datetime | None:
    text = elem.get(attr)
    if text is None:
        return None
    return convert(f"req: {attr}", xsd.parse_datetime, text)


def _check_interval(from_: datetime | None, to: datetime | None) -> None:
    if from_ is None or to is None:
        return
    # A zoneless time is undefined (§1.8); read it as UTC so the two compare.
    start, end = _as_aware(from_), _as_aware(to)
    try:
        backwards = start > end
    except OverflowError:
        raise BadRequest("req: from/to lie outside the representable range") from None
    if backwards:
        raise BadRequest(
            f"req: from ({xsd.format_datetime(from_)}) is after to ({xsd.format_datetime(to)})"
        )


def _as_aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- responses ----------------------------------------------------------------


def _element(name: str, seqnr: int, **attrs: str) -> Element:
    return Element(qname(NS_SENSORDATA, name), {"seqnr": str(seqnr), **attrs})


def _done_attrs(done: bool) -> dict[str, str]:
    return {"done": "true"} if done else {}


def build_accepted(seqnr: int, queued: bool = False) -> Element:
    """``<accepted seqnr/>``, with ``queued='true'`` when the read-out waits."""
    return _element("accepted", seqnr, **({"queued": "true"} if queued else {}))


def build_started(seqnr: int) -> Element:
    """``<started seqnr/>``: a queued read-out has begun."""
    return _element("started", seqnr)


def build_done(seqnr: int) -> Element:
    """``<done seqnr/>``: the read-out is over."""
    return _element("done", seqnr)


def build_cancelled(seqnr: int) -> Element:
    """``<cancelled seqnr/>``: the answer to a ``<cancel/>``."""
    return _element("cancelled", seqnr)


def build_fields(seqnr: int, readings: Sequence[NodeReadings], done: bool) -> Element:
    """``<fields/>`` with one ``<node>`` per reading and one ``<timestamp>`` per instant.

    The field name on the wire is the FieldSpec's name; a value under another
    name is a programming error (ValueError), as is a value of the wrong type
    (TypeError).
    """
    root = _element("fields", seqnr, **_done_attrs(done))
    for reading in readings:
        node = SubElement(root, qname(NS_SENSORDATA, "node"), node_ref_attrs(reading.node))
        for stamp, group in _by_timestamp(reading.values):
            attrs = {"value": xsd.format_datetime(stamp)}
            stamp_elem = SubElement(node, qname(NS_SENSORDATA, "timestamp"), attrs)
            for spec, value in group:
                stamp_elem.append(field_element(spec, value))
    return root


def timestamp_elements(values: Sequence[tuple[FieldSpec, FieldValue]]) -> list[Element]:
    """The ``<timestamp>`` elements of one event (for :func:`build_fields_series`)."""
    elements = []
    for stamp, group in _by_timestamp(values):
        stamp_elem = Element(
            qname(NS_SENSORDATA, "timestamp"), {"value": xsd.format_datetime(stamp)}
        )
        stamp_elem.extend(field_element(spec, value) for spec, value in group)
        elements.append(stamp_elem)
    return elements


def build_fields_series(seqnr: int, node: NodeRef, series: Sequence[Sequence[Element]]) -> Element:
    """``<fields done='true'/>`` of one node with several events, in order.

    ``series`` holds each event's :func:`timestamp_elements` (elements may be
    shared between messages: they are not changed here).  Two events of the
    same millisecond stay two ``<timestamp>`` elements, never merged.
    """
    root = _element("fields", seqnr, **_done_attrs(True))
    parent = SubElement(root, qname(NS_SENSORDATA, "node"), node_ref_attrs(node))
    for elements in series:
        parent.extend(elements)
    return root


def _by_timestamp(
    values: Sequence[tuple[FieldSpec, FieldValue]],
) -> Iterator[tuple[datetime, list[tuple[FieldSpec, FieldValue]]]]:
    # Groups keep the order in which each instant first appears.
    groups: dict[datetime, list[tuple[FieldSpec, FieldValue]]] = {}
    for spec, value in values:
        groups.setdefault(value.timestamp, []).append((spec, value))
    yield from groups.items()


def field_element(spec: FieldSpec, value: FieldValue) -> Element:
    """One typed field element (``<numeric name value unit momentary .../>``), as readouts have."""
    if value.name != spec.name:
        raise ValueError(f"value of {value.name!r} given with the spec of {spec.name!r}")
    attrs = {"name": spec.name}
    attrs.update(_flags(spec.categories, value.quality))
    if spec.writable:
        attrs["writable"] = "true"
    attrs["value"] = format_value(spec.type, value.value)
    if spec.type is FieldType.NUMERIC:
        # The schema requires unit; the text says a missing unit is left blank.
        attrs["unit"] = spec.unit or ""
    elif spec.type is FieldType.ENUM:
        attrs["dataType"] = spec.name
    return Element(qname(NS_SENSORDATA, spec.type.value), attrs)


@lru_cache(maxsize=256)
def _flags(
    categories: frozenset[Category], quality: frozenset[Quality]
) -> tuple[tuple[str, str], ...]:
    # Once per combination, not per field: iterating the enums showed in profiles.
    return tuple((c.value, "true") for c in Category if c in categories) + tuple(
        (q.value, "true") for q in Quality if q in quality
    )


def build_failure(
    seqnr: int, errors: Sequence[tuple[NodeRef, datetime, str]], done: bool
) -> Element:
    """``<failure/>`` with one ``<error nodeId timestamp>text</error>`` per error."""
    root = _element("failure", seqnr, **_done_attrs(done))
    for node, stamp, text in errors:
        attrs = {**node_ref_attrs(node), "timestamp": xsd.format_datetime(stamp)}
        SubElement(root, qname(NS_SENSORDATA, "error"), attrs).text = text
    return root


def build_rejected(seqnr: str, text: str) -> Element:
    """``<rejected seqnr><error>text</error></rejected>``, beside an IQ's ``<error/>``.

    From XEP-0323 before v0.3, which slixmpp's stock ``xep_0323`` client still
    implements: its handler matches only ``iq type='error'`` carrying it, so
    without it that client waits for its timeout on every refusal (digest §8.1).
    ``seqnr`` is the request's attribute as sent (the refusal may be about it).
    """
    root = Element(qname(NS_SENSORDATA, "rejected"), {"seqnr": seqnr})
    SubElement(root, qname(NS_SENSORDATA, "error")).text = text
    return root


# --- reading fields messages (device side, golden tests, clients) --------------


def parse_fields(elem: Element) -> list[tuple[NodeRef, list[ParsedField]]]:
    """Parse a ``<fields/>`` message; unknown elements are skipped."""
    _expect(elem, "fields")
    parse_seqnr(elem, "fields")
    result: list[tuple[NodeRef, list[ParsedField]]] = []
    for node_elem in _children(elem, "node"):
        node = parse_node_ref(node_elem, "fields")
        values: list[ParsedField] = []
        for stamp_elem in _children(node_elem, "timestamp"):
            text = require(stamp_elem, "value", "fields: timestamp")
            stamp = convert("fields: timestamp", xsd.parse_datetime, text)
            values.extend(parse_field_elements(stamp_elem, stamp))
        result.append((node, values))
    return result


def _children(elem: Element, name: str) -> Iterator[Element]:
    return (child for child in elem if local_name(child, NS_SENSORDATA) == name)


def parse_field_elements(parent: Element, stamp: datetime) -> Iterator[ParsedField]:
    """The typed field elements under ``parent``, all taken at ``stamp``."""
    for child in parent:
        kind = _field_type(local_name(child, NS_SENSORDATA))
        if kind is not None:
            yield parse_field(child, kind, stamp)


def _field_type(name: str | None) -> FieldType | None:
    if name is None:
        return None
    if name in _TYPE_ALIASES:
        return _TYPE_ALIASES[name]
    try:
        return FieldType(name)
    except ValueError:
        return None


def parse_field(elem: Element, kind: FieldType, stamp: datetime) -> ParsedField:
    """One typed field element (``<numeric name value unit .../>`` and the like)."""
    name = require(elem, "name", "fields: field")
    where = f"fields: {name}"
    lexical = elem.get("value")
    if lexical is None:
        raise BadRequest(f"{where}: missing attribute 'value'")
    categories = {c for c in Category if parse_bool_attr(elem, c.value, where)}
    categories |= {c for a, c in _CATEGORY_ALIASES.items() if parse_bool_attr(elem, a, where)}
    quality = frozenset(q for q in Quality if parse_bool_attr(elem, q.value, where))
    return ParsedField(
        name=name,
        type=kind,
        value=parse_value(kind, lexical, f"{where}: value"),
        lexical=lexical,
        timestamp=stamp,
        categories=frozenset(categories),
        # §1.6: with no flag set, the client can assume automaticReadout.
        quality=quality or frozenset({Quality.AUTOMATIC_READOUT}),
        unit=elem.get("unit"),
        data_type=elem.get("dataType"),
        writable=_optional_bool(elem, "writable", where),
        module=elem.get("module"),
        string_ids=elem.get("stringIds"),
    )
