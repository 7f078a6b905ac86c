"""Canonical comparison of ElementTree elements for the golden wire-format tests.

Two elements are the same when their tags, attributes (in any order), texts
(ignoring surrounding whitespace) and children (in order) are the same;
namespace prefixes do not matter because ElementTree resolves them.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, tostring

from defusedxml.ElementTree import fromstring

Canonical = tuple[str, tuple[tuple[str, str], ...], str, tuple["Canonical", ...]]


def canonical(elem: Element) -> Canonical:
    """A comparable form of ``elem``: (tag, sorted attributes, stripped text, children)."""
    children = tuple(canonical(child) for child in elem)
    return (str(elem.tag), tuple(sorted(elem.attrib.items())), (elem.text or "").strip(), children)


def assert_same_xml(actual: Element, expected: Element) -> None:
    """Assert that two elements are the same XML, showing both when they are not."""
    assert canonical(actual) == canonical(expected), (
        f"\nactual:   {tostring(actual, encoding='unicode')}"
        f"\nexpected: {tostring(expected, encoding='unicode')}"
    )


def parse(text: str) -> Element:
    """Parse stanza text safely (defusedxml)."""
    root: Element = fromstring(text)
    return root


def payload(stanza: str) -> Element:
    """The first child element of an ``<iq/>`` or ``<message/>`` stanza."""
    return next(iter(parse(stanza)))


def roundtrip(elem: Element) -> Element:
    """Serialise ``elem`` and parse it back, as the wire would."""
    return parse(tostring(elem, encoding="unicode"))
