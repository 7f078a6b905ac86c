"""XEP-0325 (control) wire format: ElementTree elements <-> hubd's model.

Pure: no slixmpp, no I/O, no asyncio.  ``parse_set`` checks each typed
parameter's lexical form but returns it as written; converting it to a field
value is :meth:`hubd.core.model.FieldSpec.coerce`'s job, once the node is known.

Liberal on input: Smack's ``<bool>`` is read as ``<boolean>`` (digest §8.2), and
a ``jabber:x:data`` submit form may stand in for, or add to, typed parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.model import FieldSpec, FieldType, FieldValue
from hubd.errors import BadRequest
from hubd.xmpp.sensordata_xml import (
    NodeRef,
    convert,
    format_value,
    local_name,
    parse_node_ref,
    qname,
    require,
)

NS_CONTROL = "urn:xmpp:iot:control"
NS_DATA_FORMS = "jabber:x:data"
NS_XDATA_VALIDATE = "http://jabber.org/protocol/xdata-validate"
NS_XDATA_DYNAMIC = "urn:xmpp:xdata:dynamic"

#: XEP-0336's hidden form-session field, never a control parameter.
FORM_SESSION_VAR = "xdd session"

# The schema's pattern binds its alternation loosely; this is what it means.
_COLOR = re.compile(r"^([0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _check_color(text: str) -> str:
    if not _COLOR.fullmatch(text):
        raise ValueError(f"not a colour RRGGBB or RRGGBBAA: {text!r}")
    return text


def _accept_any(text: str) -> str:
    return text


# Each typed parameter element with the check its lexical value must pass.
_PARAMETER_CHECKS: Mapping[str, Callable[[str], object]] = {
    "boolean": xsd.parse_boolean,
    "bool": xsd.parse_boolean,  # Smack's spelling (digest §8.2)
    "color": _check_color,
    "date": xsd.parse_date,
    "dateTime": xsd.parse_datetime,
    "double": xsd.parse_decimal,
    "duration": xsd.parse_duration,
    "int": partial(xsd.parse_int, bits=32),
    "long": partial(xsd.parse_int, bits=64),
    "string": _accept_any,
    "time": xsd.parse_time,
}

#: The control parameter element that carries a field of each type.
PARAMETER_ELEMENT: Mapping[FieldType, str] = {
    FieldType.NUMERIC: "double",
    FieldType.BOOLEAN: "boolean",
    FieldType.INT: "int",
    FieldType.LONG: "long",
    FieldType.STRING: "string",
    FieldType.ENUM: "string",
    FieldType.DATE: "date",
    FieldType.TIME: "time",
    FieldType.DATETIME: "dateTime",
    FieldType.DURATION: "duration",
}

#: The XEP-0122 datatype of each text-single control form field.
VALIDATE_DATATYPE: Mapping[FieldType, str] = {
    FieldType.NUMERIC: "xs:double",
    FieldType.INT: "xs:int",
    FieldType.LONG: "xs:long",
    FieldType.STRING: "xs:string",
    FieldType.DATE: "xs:date",
    FieldType.TIME: "xs:time",
    FieldType.DATETIME: "xs:dateTime",
    FieldType.DURATION: "xs:duration",
}

_FORM_BOOLEAN = frozenset({"1", "0", "true", "false"})


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """A parsed ``<set/>``: target nodes and (name, lexical value) in document order."""

    nodes: tuple[NodeRef, ...]
    parameters: tuple[tuple[str, str], ...]


# --- requests -----------------------------------------------------------------


def parse_set(elem: Element) -> ControlRequest:
    """Parse a ``<set/>`` element, or raise BadRequest saying what is wrong."""
    _expect(elem, "set")
    nodes: list[NodeRef] = []
    parameters: list[tuple[str, str]] = []
    for child in elem:
        name = local_name(child, NS_CONTROL)
        if name == "node":
            nodes.append(parse_node_ref(child, "set"))
        elif name is not None:
            parameters.append(_parse_parameter(child, name))
        elif local_name(child, NS_DATA_FORMS) == "x":
            parameters.extend(_parse_submit_form(child))
    return ControlRequest(tuple(nodes), tuple(parameters))


def parse_get_form(elem: Element) -> tuple[NodeRef, ...]:
    """Parse a ``<getForm/>`` element and return the nodes it names."""
    _expect(elem, "getForm")
    return tuple(
        parse_node_ref(child, "getForm")
        for child in elem
        if local_name(child, NS_CONTROL) == "node"
    )


def _expect(elem: Element, name: str) -> None:
    if local_name(elem, NS_CONTROL) != name:
        raise BadRequest(f"expected <{name} xmlns='{NS_CONTROL}'>, got {elem.tag!r}")


def _parse_parameter(elem: Element, kind: str) -> tuple[str, str]:
    check = _PARAMETER_CHECKS.get(kind)
    if check is None:
        raise BadRequest(f"set: unknown element <{kind}> in {NS_CONTROL}")
    name = require(elem, "name", f"set: <{kind}>")
    value = elem.get("value")
    if value is None:
        raise BadRequest(f"set: <{kind} name={name!r}>: missing attribute 'value'")
    convert(f"set: {name}", check, value)
    return name, value


def _parse_submit_form(form: Element) -> Iterator[tuple[str, str]]:
    form_type = form.get("type", "submit")
    if form_type != "submit":
        raise BadRequest(f"set: a control form must be of type 'submit', not {form_type!r}")
    for field in form:
        if local_name(field, NS_DATA_FORMS) != "field":
            continue
        var = require(field, "var", "set: form field")
        if var != FORM_SESSION_VAR:
            yield var, _form_value(field, var)


def _form_value(field: Element, var: str) -> str:
    values = [v.text or "" for v in field if local_name(v, NS_DATA_FORMS) == "value"]
    if not values:
        raise BadRequest(f"set: form field {var!r} has no value")
    if field.get("type") == "boolean" and values[0].strip() not in _FORM_BOOLEAN:
        raise BadRequest(f"set: form field {var!r}: not a boolean: {values[0]!r}")
    # A text-multi field carries its lines as separate values (XEP-0004).
    return "\n".join(values)


# --- responses ----------------------------------------------------------------


#: XEP-0325 v0.2's response codes, still what slixmpp's stock ``xep_0325`` client reads.
ResponseCode = Literal[
    "OK", "NotFound", "InsufficientPrivileges", "Locked", "NotImplemented", "OtherError"
]


def build_set_response() -> Element:
    """``<setResponse responseCode='OK'/>``: everything was done as asked.

    Empty in the current XEP; the ``responseCode`` of its v0.2 is an extra
    attribute that current clients ignore and that slixmpp's stock client
    reports to its callback (it reports ``''`` without it, digest §8.1).
    """
    return Element(qname(NS_CONTROL, "setResponse"), {"responseCode": "OK"})


def build_refused_set_response(
    code: ResponseCode, text: str, *, node_id: str | None = None, parameter: str | None = None
) -> Element:
    """The v0.2 refusal ``<setResponse responseCode>`` that goes beside an IQ's ``<error/>``.

    Current clients read the RFC 6120 error (with ``paramError``); slixmpp's
    stock client matches only ``iq type='error'`` carrying this element and
    would otherwise wait for its timeout.  It names the failing node and
    parameter, when known, and gives the reason in ``<error var>``.
    """
    elem = Element(qname(NS_CONTROL, "setResponse"), {"responseCode": code})
    if node_id is not None:
        SubElement(elem, qname(NS_CONTROL, "node"), {"nodeId": node_id})
    if parameter is not None:
        SubElement(elem, qname(NS_CONTROL, "parameter"), {"name": parameter})
    SubElement(elem, qname(NS_CONTROL, "error"), {"var": parameter or ""}).text = text
    return elem


def build_param_error(var: str, text: str) -> Element:
    """``<paramError var>text</paramError>`` for the ``<error/>`` of an IQ error."""
    elem = Element(qname(NS_CONTROL, "paramError"), {"var": var})
    elem.text = text
    return elem


def build_control_form(
    title: str, specs: Sequence[FieldSpec], current: Mapping[str, FieldValue]
) -> Element:
    """The XEP-0004 control form for the writable ``specs``, in their order.

    Every field is marked ``notSame`` (XEP-0325 §3.3) so that an untouched
    field is not sent back; ``current`` supplies each field's shown value.
    """
    form = Element(qname(NS_DATA_FORMS, "x"), {"type": "form"})
    SubElement(form, qname(NS_DATA_FORMS, "title")).text = title
    for spec in specs:
        if spec.writable:
            form.append(_form_field(spec, current.get(spec.name)))
    return form


def _form_field(spec: FieldSpec, value: FieldValue | None) -> Element:
    field = Element(
        qname(NS_DATA_FORMS, "field"),
        {"var": spec.name, "type": _form_field_type(spec.type), "label": spec.display_name},
    )
    if spec.description:
        SubElement(field, qname(NS_DATA_FORMS, "desc")).text = spec.description
    if value is not None:
        text = format_value(spec.type, value.value)
        SubElement(field, qname(NS_DATA_FORMS, "value")).text = text
    if spec.type is FieldType.ENUM:
        _add_options(field, spec.options)
    elif spec.type is not FieldType.BOOLEAN:
        field.append(_validate(spec))
    SubElement(field, qname(NS_XDATA_DYNAMIC, "notSame"))
    return field


def _form_field_type(kind: FieldType) -> str:
    if kind is FieldType.BOOLEAN:
        return "boolean"
    if kind is FieldType.ENUM:
        return "list-single"
    return "text-single"


def _add_options(field: Element, options: Sequence[str]) -> None:
    for option in options:
        elem = SubElement(field, qname(NS_DATA_FORMS, "option"), {"label": option})
        SubElement(elem, qname(NS_DATA_FORMS, "value")).text = option


def _validate(spec: FieldSpec) -> Element:
    validate = Element(
        qname(NS_XDATA_VALIDATE, "validate"), {"datatype": VALIDATE_DATATYPE[spec.type]}
    )
    bounds = {}
    if spec.minimum is not None:
        bounds["min"] = xsd.format_decimal(spec.minimum)
    if spec.maximum is not None:
        bounds["max"] = xsd.format_decimal(spec.maximum)
    if bounds:
        SubElement(validate, qname(NS_XDATA_VALIDATE, "range"), bounds)
    return validate
