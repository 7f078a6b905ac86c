"""Out-of-Band Data (XEP-0066) on a message: how a shared file shows inline in a client.

Conversations, Monal, Gajim and Dino show a picture in the conversation only
when the body is exactly the file's URL and a ``<x xmlns='jabber:x:oob'>``
carries the same URL.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement

NS_OOB = "jabber:x:oob"


def oob_element(url: str) -> Element:
    """``<x xmlns='jabber:x:oob'><url>URL</url></x>``."""
    element = Element(f"{{{NS_OOB}}}x")
    SubElement(element, f"{{{NS_OOB}}}url").text = url
    return element


def link_message(message: Any, url: str) -> Any:
    """Make ``message`` (a slixmpp Message) carry ``url``: as its whole body and as OOB."""
    message["body"] = url
    message.xml.append(oob_element(url))
    return message
