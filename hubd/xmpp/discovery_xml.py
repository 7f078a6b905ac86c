"""XEP-0347 payloads (``urn:xmpp:iot:discovery``) as plain ElementTree: built and parsed.

Pure functions, no slixmpp: what the hub sends (``register``, ``update``,
``unregister``) and what it reads (``claimed``, ``removed``, ``disowned``, in
a registry's request or in the answer to a registration).  The hub registers
itself as a whole (no ``nodeId``): it is one Thing that happens to be a
concentrator, and its owner owns every device on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from hubd.core.claim import MetaTag
from hubd.errors import BadRequest

NS_DISCOVERY = "urn:xmpp:iot:discovery"
_PREFIX = "{" + NS_DISCOVERY + "}"


def _tags(element: Element, tags: Iterable[MetaTag]) -> Element:
    for tag in tags:
        kind = "num" if tag.numeric else "str"
        SubElement(element, _PREFIX + kind, {"name": tag.name, "value": tag.text})
    return element


def register_element(tags: Iterable[MetaTag], *, self_owned: bool = False) -> Element:
    """``<register>`` with every tag (§3.6); ``selfOwned='true'`` for a public self-owned Thing."""
    attrs = {"selfOwned": "true"} if self_owned else {}
    return _tags(Element(_PREFIX + "register", attrs), tags)


def update_element(tags: Iterable[MetaTag]) -> Element:
    """``<update>`` with the tags that changed (§3.12); an empty string removes a tag."""
    return _tags(Element(_PREFIX + "update"), tags)


def unregister_element() -> Element:
    """``<unregister/>`` (§3.14)."""
    return Element(_PREFIX + "unregister")


@dataclass(frozen=True, slots=True)
class Claimed:
    """``<claimed jid='owner@example.org' public='false'/>``: who owns the hub now."""

    owner: str
    public: bool


def parse_claimed(element: Element) -> Claimed:
    """Read ``<claimed/>``; raises BadRequest unless ``jid`` is a person's bare JID."""
    owner = (element.get("jid") or "").strip().lower()
    local, at, domain = owner.partition("@")
    if not at or not local or not domain or "/" in owner or any(c.isspace() for c in owner):
        raise BadRequest(f"claimed: jid must be the owner's bare JID, not {owner!r}")
    if element.get("nodeId") is not None:
        raise BadRequest("claimed: the hub registers as one Thing, not a nodeId")
    public = (element.get("public") or "true").strip().lower()
    if public not in ("true", "false", "1", "0"):
        raise BadRequest(f"claimed: public must be a boolean, not {public!r}")
    return Claimed(owner, public in ("true", "1"))


def discovery_child(stanza_xml: Element) -> Element | None:
    """The first ``urn:xmpp:iot:discovery`` child of a stanza, if any."""
    for child in stanza_xml:
        if isinstance(child.tag, str) and child.tag.startswith(_PREFIX):
            return child
    return None


def local(element: Element) -> str:
    """The element's name without its namespace (``claimed``, ``removed``...)."""
    return element.tag.removeprefix(_PREFIX)
