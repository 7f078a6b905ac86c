"""Hypothesis strategies of hostile element trees and hostile strings, for the fuzz tests."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hypothesis import strategies as st

# Values that break naive code: huge and negative numbers, NaN, odd dates,
# control characters, bidi overrides, entity-looking text, very long strings.
_NASTY = [
    "", " ", "true", "false", "1", "0", "-1", "NaN", "INF", "-INF", "1e309",
    "99999999999999999999999999999999", "2147483648", "-9223372036854775809",
    "2013-03-07T19:00:00Z", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.9999999",
    "P99999999Y", "PT-1S", "3399FF", "&amp;", "&xxe;", "<![CDATA[x]]>", "\u202e", "\x7f",
    "node1", "node2", "MeteringTopology", "gpio", "level", "x" * 5000,
]  # fmt: skip
_ATTRS = [
    "seqnr", "momentary", "all", "historical", "from", "to", "when", "nodeId", "sourceId",
    "cacheType", "name", "value", "var", "type", "parameters", "messages", "changedBy",
    "changedUp", "changedDown", "currentValue", "minInterval", "maxInterval", "maxAge", "req",
    "getEventsSince", "nodeAdded", "xml:lang",
]  # fmt: skip

hostile_text = st.one_of(st.sampled_from(_NASTY), st.text(max_size=40))
attributes = st.dictionaries(
    st.one_of(st.sampled_from(_ATTRS), st.text(alphabet="abcxyz", min_size=1, max_size=6)),
    hostile_text,
    max_size=8,
)


def _make(tag: str, attrib: dict[str, str], text: str | None, children: list[Element]) -> Element:
    elem = Element(tag, attrib)
    elem.text = text
    elem.extend(children)
    return elem


def element_trees(
    root: str, names: list[str], namespaces: list[str], max_leaves: int = 16
) -> st.SearchStrategy[Element]:
    """Random trees under ``root``, tags from ``names`` in ``namespaces`` (``""``: none)."""
    tags = st.builds(
        lambda ns, n: f"{{{ns}}}{n}" if ns else n,
        st.sampled_from(namespaces),
        st.sampled_from(names),
    )
    texts = st.one_of(st.none(), hostile_text)
    leaves = st.builds(_make, tags, attributes, texts, st.just([]))
    trees = st.recursive(
        leaves,
        lambda kids: st.builds(_make, tags, attributes, texts, st.lists(kids, max_size=4)),
        max_leaves=max_leaves,
    )
    return st.builds(_make, st.just(root), attributes, texts, st.lists(trees, max_size=6))
