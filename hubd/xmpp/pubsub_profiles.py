"""What each ``pubsub.profiles`` entry puts on which node (see pubsub-profiles.md).

- ``iot``: one item per device on ``pubsub.node``, id = the device id, payload
  = the XEP-0323 ``<fields>`` of its latest values.
- ``uwpx``: the nodes of esp32-xmpp-iot, so that its client (UWPX) sees the
  hub's devices: ``xmpp.iot.sensors`` and ``xmpp.iot.actuators`` with one
  ``<val xmlns='urn:xmpp:uwpx:iot'>`` item per current value
  (``xmpp.iot.sensor.<device>.<field>``), and ``xmpp.iot.ui`` with one data
  form naming them all.

Pure ElementTree; :mod:`hubd.xmpp.pubsub` publishes what these return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from hubd.core.model import FieldSpec, FieldType, FieldValue
from hubd.core.node import Node
from hubd.xmpp.pubsub_xml import NS_DATA, build_device_fields
from hubd.xmpp.sensordata_xml import format_value, qname

NS_UWPX = "urn:xmpp:uwpx:iot"
NS_DYNAMIC = "urn:xmpp:xdata:dynamic"
SENSORS = "xmpp.iot.sensors"
ACTUATORS = "xmpp.iot.actuators"
UI = "xmpp.iot.ui"
UI_ITEM = "current"
_UWPX_TYPES = {
    FieldType.BOOLEAN: "bool",
    FieldType.NUMERIC: "double",
    FieldType.INT: "int",
    FieldType.LONG: "int",
}


@dataclass(frozen=True, slots=True)
class Item:
    """One item to publish: its node, its id and its payload."""

    node: str
    item_id: str
    payload: Element


def current_values(node: Node) -> list[tuple[FieldSpec, FieldValue]]:
    """The device's latest values with their specs, in the order of its fields."""
    cache = node.cache
    return [(spec, value) for spec in node.spec.fields if (value := cache.get(spec.name))]


def iot_item(node_name: str, node: Node) -> Item | None:
    """The ``iot`` item of one device (None while it has no value at all)."""
    values = current_values(node)
    if not values:
        return None
    return Item(node_name, node.id, build_device_fields(node.id, values))


# --- uwpx --------------------------------------------------------------------------


def uwpx_item_id(spec: FieldSpec, device_id: str) -> str:
    """``xmpp.iot.sensor.weather.temperature`` / ``xmpp.iot.actuator.porch-light.state``."""
    kind = "actuator" if spec.writable else "sensor"
    return f"xmpp.iot.{kind}.{device_id}.{spec.name}"


def uwpx_value(spec: FieldSpec, value: FieldValue) -> Element:
    """``<val xmlns='urn:xmpp:uwpx:iot' type unit>TEXT</val>`` as the ESP32 writes it."""
    kind = _UWPX_TYPES.get(spec.type, "string")
    element = Element(qname(NS_UWPX, "val"), {"type": kind, "unit": spec.unit or ""})
    if spec.type is FieldType.BOOLEAN:
        element.text = "1" if value.value else "0"
    else:
        element.text = format_value(spec.type, value.value)
    return element


def uwpx_items(node: Node) -> list[Item]:
    """One sensors/actuators item per current value of the device."""
    return [
        Item(
            ACTUATORS if spec.writable else SENSORS,
            uwpx_item_id(spec, node.id),
            uwpx_value(spec, value),
        )
        for spec, value in current_values(node)
    ]


def uwpx_ids(nodes: Iterable[Node]) -> dict[str, set[str]]:
    """Per uwpx value node, the item ids these devices may have there (valued or not yet)."""
    ids: dict[str, set[str]] = {SENSORS: set(), ACTUATORS: set()}
    for node in nodes:
        for spec in node.spec.fields:
            ids[ACTUATORS if spec.writable else SENSORS].add(uwpx_item_id(spec, node.id))
    return ids


def uwpx_form(title: str, nodes: Iterable[Node]) -> Item:
    """The ``xmpp.iot.ui`` item: one form field per sensor and actuator item (var = its id)."""
    form = Element(qname(NS_DATA, "x"), {"type": "form"})
    SubElement(form, qname(NS_DATA, "title")).text = title
    for node in nodes:
        for spec in node.spec.fields:
            if node.cache.get(spec.name) is None:
                continue  # no item (e.g. weather's send): no field either
            kind = "boolean" if spec.writable and spec.type is FieldType.BOOLEAN else "text-single"
            attrs = {
                "var": uwpx_item_id(spec, node.id),
                "type": kind,
                "label": f"{node.name} {spec.name}",
            }
            field = SubElement(form, qname(NS_DATA, "field"), attrs)
            if not spec.writable:
                SubElement(field, qname(NS_DYNAMIC, "readOnly"))
    return Item(UI, UI_ITEM, form)


def device_of(item_id: str, node_name: str, iot_node: str) -> str | None:
    """The device an item of one of the profiles' nodes belongs to (None: no device)."""
    if node_name == iot_node:
        return item_id
    if node_name in (SENSORS, ACTUATORS):
        parts = item_id.split(".")
        return parts[3] if len(parts) == 5 else None
    return None


def profile_nodes(profiles: Sequence[str], iot_node: str) -> tuple[str, ...]:
    """The nodes the profiles publish to."""
    nodes: list[str] = []
    if "iot" in profiles:
        nodes.append(iot_node)
    if "uwpx" in profiles:
        nodes += [SENSORS, ACTUATORS, UI]
    return tuple(nodes)
