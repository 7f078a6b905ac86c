"""A hypothesis strategy of random element trees, for the "only BadRequest" properties.

Attribute names and values are drawn mostly from what the IoT XEPs use, with
edge cases (huge numbers, extreme zones, empty strings) mixed with noise, so
that the parsers meet both nearly valid and absurd input.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from hypothesis import strategies as st

_ATTRS = [
    "seqnr", "momentary", "all", "historical", "identity", "identification", "historicalDay",
    "from", "to", "when", "nodeId", "sourceId", "cacheType", "name", "serviceToken",
    "value", "var", "type", "unit", "dataType", "writable", "done",
]  # fmt: skip
_VALUES = [
    "true", "false", "1", "0", "maybe", "", " ", "-1", "2147483648", "99999999999999999999",
    "2013-03-07T19:00:00", "2013-03-07T19:00:00Z", "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999999", "2013-03-07", "PT1S", "NaN",
    "3399FF", "3399FFAA", "submit", "form", "boolean", "text-multi", "xdd session", "INF",
]  # fmt: skip

attr_values = st.one_of(st.sampled_from(_VALUES), st.text(max_size=12), st.integers().map(str))
_noise = st.dictionaries(
    st.one_of(st.sampled_from(_ATTRS), st.text(alphabet="abcxyz", min_size=1, max_size=4)),
    attr_values,
    max_size=6,
)
# Plausible attributes, so that many trees get past the first check and the
# deeper code paths are exercised too; the noise may then override them.
_plausible = st.fixed_dictionaries(
    {},
    optional={
        "seqnr": st.sampled_from(["1", "42"]),
        "name": st.sampled_from(["x", "y"]),
        "nodeId": st.just("n1"),
        "var": st.sampled_from(["v", "xdd session"]),
        "value": st.sampled_from(["true", "0", "3399FF", "2013-03-07", "PT1S", "08:00:00"]),
    },
)
attributes = st.builds(lambda good, noise: {**good, **noise}, _plausible, _noise)
texts = st.one_of(st.none(), attr_values)


def _make(tag: str, attrib: dict[str, str], text: str | None, children: list[Element]) -> Element:
    elem = Element(tag, attrib)
    elem.text = text
    elem.extend(children)
    return elem


def element_trees(root: str, names: list[str], namespaces: list[str]) -> st.SearchStrategy[Element]:
    """Random trees under ``root`` with tags drawn from ``names`` in ``namespaces``."""
    tags = st.builds(
        lambda ns, n: f"{{{ns}}}{n}" if ns else n,
        st.sampled_from(namespaces),
        st.sampled_from(names),
    )
    leaves = st.builds(_make, tags, attributes, texts, st.just([]))
    trees = st.recursive(
        leaves,
        lambda kids: st.builds(_make, tags, attributes, texts, st.lists(kids, max_size=4)),
        max_leaves=12,
    )
    return st.builds(_make, st.just(root), attributes, texts, st.lists(trees, max_size=6))
