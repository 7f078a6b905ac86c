"""Publish-Subscribe on the wire (XEP-0060, XEP-0163): the requests the hub sends, parsed answers.

Pure ElementTree, no slixmpp: :mod:`hubd.xmpp.pubsub` sends these.  Node
configuration is one mapping of ``pubsub#...`` fields, sent either as
publish-options preconditions (§7.1.5) or as a node configuration form
(§8.1.3 create-and-configure, §8.2 configure).  The ``iot`` profile's item
payload is the XEP-0323 ``<fields>`` of one device's latest values, built from
the same field elements a momentary readout carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.model import FieldSpec, FieldValue
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, field_element, qname

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_DATA = "jabber:x:data"
PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def node_options(access_model: str, max_items: int) -> dict[str, str]:
    """The node configuration hubd asks for (pubsub-profiles.md, "Node configuration")."""
    return {
        "pubsub#persist_items": "true",
        "pubsub#max_items": str(max_items),
        "pubsub#access_model": access_model,
        "pubsub#publish_model": "publishers",
    }


def max_items_for(count: int) -> int:
    """Room for ``count`` items, in steps (a device more rarely changes the node's config)."""
    return max(32, 1 << max(count - 1, 0).bit_length())


def build_form(form_type: str, fields: Mapping[str, str], kind: str = "submit") -> Element:
    """A XEP-0004 form with a hidden FORM_TYPE and one single-valued field per entry."""
    form = Element(qname(NS_DATA, "x"), {"type": kind})
    hidden = SubElement(form, qname(NS_DATA, "field"), {"var": "FORM_TYPE", "type": "hidden"})
    SubElement(hidden, qname(NS_DATA, "value")).text = form_type
    for var, value in fields.items():
        field = SubElement(form, qname(NS_DATA, "field"), {"var": var})
        SubElement(field, qname(NS_DATA, "value")).text = value
    return form


def build_publish(
    node: str, item_id: str, item: Element, options: Mapping[str, str] | None = None
) -> Element:
    """``<pubsub><publish node><item id>PAYLOAD</item></publish><publish-options/>?</pubsub>``."""
    root = Element(qname(NS_PUBSUB, "pubsub"))
    publish = SubElement(root, qname(NS_PUBSUB, "publish"), {"node": node})
    SubElement(publish, qname(NS_PUBSUB, "item"), {"id": item_id}).append(item)
    if options:
        wrapper = SubElement(root, qname(NS_PUBSUB, "publish-options"))
        wrapper.append(build_form(PUBLISH_OPTIONS, options))
    return root


def build_create(node: str, options: Mapping[str, str]) -> Element:
    """Create-and-configure (§8.1.3): ``<create node/><configure><x .../></configure>``."""
    root = Element(qname(NS_PUBSUB, "pubsub"))
    SubElement(root, qname(NS_PUBSUB, "create"), {"node": node})
    SubElement(root, qname(NS_PUBSUB, "configure")).append(build_form(NODE_CONFIG, options))
    return root


def build_configure(node: str, options: Mapping[str, str]) -> Element:
    """The owner's configuration form (§8.2.4): ``<configure node><x type='submit'/>``."""
    root = Element(qname(NS_OWNER, "pubsub"))
    configure = SubElement(root, qname(NS_OWNER, "configure"), {"node": node})
    configure.append(build_form(NODE_CONFIG, options))
    return root


def build_items_request(node: str) -> Element:
    """Retrieve all items (§6.5.2): ``<pubsub><items node/></pubsub>``."""
    root = Element(qname(NS_PUBSUB, "pubsub"))
    SubElement(root, qname(NS_PUBSUB, "items"), {"node": node})
    return root


def build_retract(node: str, item_id: str) -> Element:
    """Delete one item (§7.2): ``<retract node><item id/></retract>``."""
    root = Element(qname(NS_PUBSUB, "pubsub"))
    retract = SubElement(root, qname(NS_PUBSUB, "retract"), {"node": node})
    SubElement(retract, qname(NS_PUBSUB, "item"), {"id": item_id})
    return root


def build_affiliations_request(node: str) -> Element:
    """The owner's affiliations list (§8.9.1)."""
    root = Element(qname(NS_OWNER, "pubsub"))
    SubElement(root, qname(NS_OWNER, "affiliations"), {"node": node})
    return root


def build_affiliations_set(node: str, changes: Mapping[str, str]) -> Element:
    """Modify affiliations (§8.9.2): one ``<affiliation jid affiliation/>`` per change."""
    root = Element(qname(NS_OWNER, "pubsub"))
    parent = SubElement(root, qname(NS_OWNER, "affiliations"), {"node": node})
    for jid, affiliation in changes.items():
        SubElement(parent, qname(NS_OWNER, "affiliation"), {"jid": jid, "affiliation": affiliation})
    return root


def build_subscriptions_request(node: str) -> Element:
    """The owner's subscriptions list (§8.8.1)."""
    root = Element(qname(NS_OWNER, "pubsub"))
    SubElement(root, qname(NS_OWNER, "subscriptions"), {"node": node})
    return root


def build_subscriptions_set(node: str, jids: Sequence[str]) -> Element:
    """End subscriptions (§8.8.2): ``subscription='none'`` for each JID."""
    root = Element(qname(NS_OWNER, "pubsub"))
    parent = SubElement(root, qname(NS_OWNER, "subscriptions"), {"node": node})
    for jid in jids:
        SubElement(parent, qname(NS_OWNER, "subscription"), {"jid": jid, "subscription": "none"})
    return root


def parse_items(root: Element | None) -> dict[str, Element | None]:
    """Item id -> its payload (None when empty), from a ``<pubsub><items>`` result."""
    items: dict[str, Element | None] = {}
    if root is None:
        return items
    for item in root.iter(qname(NS_PUBSUB, "item")):
        item_id = item.get("id")
        if item_id:
            items[item_id] = next(iter(item), None)
    return items


def parse_affiliations(root: Element | None) -> dict[str, str]:
    """Bare JID (lowercased) -> affiliation, from an owner ``<affiliations>`` result."""
    found: dict[str, str] = {}
    if root is None:
        return found
    for entry in root.iter(qname(NS_OWNER, "affiliation")):
        jid, affiliation = entry.get("jid"), entry.get("affiliation")
        if jid and affiliation:
            found[jid.split("/", 1)[0].lower()] = affiliation
    return found


def parse_subscriptions(root: Element | None) -> dict[str, list[str]]:
    """Bare JID (lowercased) -> the JIDs it is subscribed as, from an owner result."""
    found: dict[str, list[str]] = {}
    if root is None:
        return found
    for entry in root.iter(qname(NS_OWNER, "subscription")):
        jid = entry.get("jid")
        if jid and entry.get("subscription", "subscribed") != "none":
            found.setdefault(jid.split("/", 1)[0].lower(), []).append(jid)
    return found


def error_conditions(error: Element | None) -> tuple[str, str | None]:
    """(the stanza error condition, the pubsub-specific one or None) of an ``<error/>``."""
    if error is None:
        return "undefined-condition", None
    condition, detail = "undefined-condition", None
    for child in error:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag.startswith("{" + _STANZAS + "}") and not tag.endswith("}text"):
            condition = tag.rsplit("}", 1)[1]
        elif tag.startswith("{" + NS_ERRORS + "}"):
            detail = tag.rsplit("}", 1)[1]
    return condition, detail


# --- the iot profile -------------------------------------------------------------


def build_device_fields(node_id: str, values: Sequence[tuple[FieldSpec, FieldValue]]) -> Element:
    """``<fields xmlns='urn:xmpp:iot:sensordata'><node nodeId><timestamp>`` of one device.

    One ``<timestamp>``, the time of the newest value, holding every current
    value as the same typed field element a momentary readout carries.
    """
    root = Element(qname(NS_SENSORDATA, "fields"))
    node = SubElement(root, qname(NS_SENSORDATA, "node"), {"nodeId": node_id})
    if not values:
        return root
    newest = max(value.timestamp for _, value in values)
    stamp = SubElement(
        node, qname(NS_SENSORDATA, "timestamp"), {"value": xsd.format_datetime(newest)}
    )
    stamp.extend([field_element(spec, value) for spec, value in values])
    return root


def field_names(payload: Element | None) -> frozenset[str]:
    """The field names an ``iot`` item carries (what a restart must not thin out)."""
    if payload is None or payload.tag != qname(NS_SENSORDATA, "fields"):
        return frozenset()
    return frozenset(
        name
        for stamp in payload.iter(qname(NS_SENSORDATA, "timestamp"))
        for field in stamp
        if (name := field.get("name"))
    )
