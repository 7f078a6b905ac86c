"""Small slixmpp glue shared by the IoT services: match payloads, send replies.

The services build their payloads as plain ElementTree elements (the pure
``*_xml`` modules); this is where those meet slixmpp's stanza objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.xmlstream.matcher.base import MatcherBase

from hubd.xmpp.errors import ErrorCondition

_CLIENT = "{jabber:client}"
_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


class PayloadMatcher(MatcherBase):
    """Matches a stanza whose child is in ``namespace`` (and, if given, one of ``names``)."""

    def __init__(
        self,
        stanza: str,
        namespace: str,
        names: Iterable[str] | None = None,
        types: Iterable[str] = (),
    ) -> None:
        super().__init__(namespace)
        self.tag = _CLIENT + stanza
        self.prefix = "{" + namespace + "}"
        self.names = None if names is None else frozenset(self.prefix + n for n in names)
        self.types = frozenset(types)

    def match(self, stanza: Any) -> bool:
        """True for a stanza of the right kind carrying a payload of ours."""
        xml = stanza.xml
        if xml.tag != self.tag or (self.types and xml.get("type", "normal") not in self.types):
            return False
        return payload(stanza, self.prefix, self.names) is not None


def payload(stanza: Any, prefix: str, names: frozenset[str] | None = None) -> Element | None:
    """The first child of ``stanza`` in the namespace ``prefix`` (Clark form), if any."""
    child: Element
    for child in stanza.xml:
        tag = child.tag
        if isinstance(tag, str) and tag.startswith(prefix) and (names is None or tag in names):
            return child
    return None


def send_result(iq: Any, element: Element | None = None) -> None:
    """Answer ``iq`` with a result carrying ``element``."""
    reply = iq.reply(clear=True)
    if element is not None:
        reply.xml.append(element)
    reply.send()


def send_error(
    iq: Any,
    condition: ErrorCondition,
    *,
    beside: Element | None = None,
    inside: Iterable[Element] = (),
) -> None:
    """Answer ``iq`` with an error; ``beside`` goes next to ``<error/>``, ``inside`` into it."""
    reply = iq.reply(clear=True)
    reply["type"] = "error"
    error = reply["error"]
    error["type"] = condition.type
    if condition.condition in error.conditions:
        error["condition"] = condition.condition
    else:
        # slixmpp's list predates RFC 6120 (no policy-violation) and would
        # silently keep its default, feature-not-implemented.
        del error["condition"]
        error.xml.append(Element(f"{{{_STANZAS}}}{condition.condition}"))
    if condition.text:
        error["text"] = condition.text
    for element in inside:
        error.xml.append(element)
    if beside is not None:
        reply.xml.insert(0, beside)
    reply.send()


def send_message(xmpp: ClientXMPP, to: JID, element: Element) -> None:
    """Send a message (type normal) carrying ``element`` to ``to``."""
    message = xmpp.make_message(mto=to)
    message.xml.append(element)
    message.send()
