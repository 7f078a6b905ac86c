"""hubd/xmpp/prebuilt_events.py: a prebuilt event text is what slixmpp would write, byte for byte.

Each case builds the stanza the slow path sends and serialises it with
slixmpp's ``tostring`` (as its send queue does), against the prebuilt text
for the same event, twice: the second time from the cached template.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from xml.etree.ElementTree import Element

import pytest
from slixmpp import ClientXMPP
from slixmpp.stanza import Message
from slixmpp.xmlstream.tostring import tostring

from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, Quality
from hubd.xmpp.direct_send import message_element
from hubd.xmpp.prebuilt_events import CACHE_LIMIT, EventTexts, MessageBuiltOnUse, fields_message
from hubd.xmpp.sensordata_xml import NodeReadings, NodeRef, build_fields

AT = datetime(2026, 12, 4, 1, 2, 3, 456000, tzinfo=UTC)
TARGET = "sub@example.org/bench"
NUMERIC = FieldSpec(name="v", type=FieldType.NUMERIC, unit="°C")
Pairs = Sequence[tuple[FieldSpec, FieldValue]]


def _xmpp() -> ClientXMPP:
    return ClientXMPP("hub@example.org/hubd", "secret")


def _slow(xmpp: ClientXMPP, ref: NodeRef, message_id: str, pairs: Pairs, seqnr: int = 7) -> str:
    stanza = fields_message(xmpp, TARGET, seqnr, ref, message_id, pairs)
    return tostring(stanza.xml, xmlns=xmpp.default_ns, stream=xmpp, top_level=True)


def _value(spec: FieldSpec, value: object, **kwargs: object) -> tuple[FieldSpec, FieldValue]:
    return spec, FieldValue(spec.name, value, kwargs.pop("at", AT), **kwargs)  # type: ignore[arg-type]


CASES: dict[str, tuple[NodeRef, Pairs]] = {
    "numeric with a unit": (NodeRef("probe"), [_value(NUMERIC, Decimal("21.50"))]),
    "numeric without a unit, negative": (
        NodeRef("probe", "hubd"),
        [_value(FieldSpec(name="t", type=FieldType.NUMERIC), Decimal("-0.001"))],
    ),
    "braces in a node id": (NodeRef("a{0}}b{", "{src}"), [_value(NUMERIC, Decimal("1.5"))]),
    "every type, flags, writable, quality": (
        NodeRef("n&<'\"", "src>", "cache"),
        [
            _value(FieldSpec(name="on", type=FieldType.BOOLEAN, writable=True), True),
            _value(FieldSpec(name="count", type=FieldType.INT), -3),
            _value(FieldSpec(name="total", type=FieldType.LONG), 2**40),
            _value(
                FieldSpec(
                    name="state",
                    type=FieldType.STRING,
                    categories=frozenset({Category.STATUS, Category.IDENTITY}),
                ),
                "a<b & \"c\" 'd' >",
                quality=frozenset({Quality.WARNING, Quality.AUTOMATIC_READOUT}),
            ),
            _value(FieldSpec(name="mode", type=FieldType.ENUM, options=("a", "b&c")), "b&c"),
            _value(FieldSpec(name="since", type=FieldType.DATETIME), AT),
            _value(FieldSpec(name="spell", type=FieldType.DURATION), timedelta(seconds=90)),
        ],
    ),
}


@pytest.mark.parametrize("use_cdata", [False, True])
@pytest.mark.parametrize("name", list(CASES))
async def test_the_text_is_what_slixmpp_writes(name: str, use_cdata: bool) -> None:
    ref, pairs = CASES[name]
    xmpp = _xmpp()
    xmpp.use_cdata = use_cdata
    texts = EventTexts(xmpp)
    for message_id in ("hubd-ev-1", "hubd-ev-2"):  # made, then from the cache
        assert texts.text(TARGET, 7, ref, message_id, pairs) == _slow(xmpp, ref, message_id, pairs)


async def test_only_the_changing_parts_change() -> None:
    xmpp = _xmpp()
    texts = EventTexts(xmpp)
    ref = NodeRef("probe")
    texts.text(TARGET, 7, ref, "hubd-ev-1", [_value(NUMERIC, Decimal(1))])
    later = [_value(NUMERIC, Decimal("1e+3"), at=AT + timedelta(seconds=1))]
    assert texts.text(TARGET, 7, ref, "hubd-ev-&2", later) == _slow(xmpp, ref, "hubd-ev-&2", later)
    # Another seqnr, target, quality or spec is another template, not a wrong text.
    warned = [_value(NUMERIC, Decimal(2), quality=frozenset({Quality.WARNING}))]
    assert texts.text(TARGET, 7, ref, "x", warned) == _slow(xmpp, ref, "x", warned)
    assert texts.text(TARGET, 8, ref, "x", warned) == _slow(xmpp, ref, "x", warned, seqnr=8)
    respec = [_value(FieldSpec(name="v", type=FieldType.NUMERIC, unit="K"), Decimal(2))]
    assert texts.text(TARGET, 7, ref, "x", respec) == _slow(xmpp, ref, "x", respec)


async def test_values_of_several_instants_are_left_to_the_slow_path() -> None:
    pairs = [
        _value(NUMERIC, Decimal(1)),
        _value(FieldSpec(name="w", type=FieldType.INT), 2, at=AT + timedelta(seconds=1)),
    ]
    assert EventTexts(_xmpp()).text(TARGET, 7, NodeRef("probe"), "x", pairs) is None
    assert EventTexts(_xmpp()).text(TARGET, 7, NodeRef("probe"), "x", []) is None


async def test_a_placeholder_character_in_a_name_is_left_to_the_slow_path() -> None:
    pairs = [_value(NUMERIC, Decimal(1))]
    assert EventTexts(_xmpp()).text(TARGET, 7, NodeRef("odd\ue000v0\ue000"), "x", pairs) is None


async def test_the_cache_is_bounded() -> None:
    xmpp = _xmpp()
    texts = EventTexts(xmpp)
    pairs = [_value(NUMERIC, Decimal(1))]
    for seqnr in range(CACHE_LIMIT + 5):
        assert texts.text(TARGET, seqnr, NodeRef("p"), "x", pairs) is not None
    assert len(texts._templates) <= CACHE_LIMIT


async def test_the_kept_stanza_is_built_by_its_first_reader_as_the_slow_path_builds_it() -> None:
    xmpp = _xmpp()
    ref, pairs = CASES["every type, flags, writable, quality"]
    builds: list[int] = []

    def build() -> Element:
        builds.append(1)
        return message_element(
            TARGET, "hubd-ev-9", build_fields(7, [NodeReadings(ref, pairs)], True)
        )

    stanza = MessageBuiltOnUse(xmpp, "hubd-ev-9", build)
    assert isinstance(stanza, Message), "what XEP-0198 counts and keeps"
    assert stanza["id"] == "hubd-ev-9"  # what an acknowledgement's handler reads
    assert not builds, "nothing built until something reads more than its id"
    assert stanza["to"] == TARGET
    assert builds == [1]
    assert stanza["id"] == "hubd-ev-9"
    text = tostring(stanza.xml, xmlns=xmpp.default_ns, stream=xmpp, top_level=True)
    assert text == _slow(xmpp, ref, "hubd-ev-9", pairs)
    assert text == EventTexts(xmpp).text(TARGET, 7, ref, "hubd-ev-9", pairs)
    assert builds == [1], "built once"
    with pytest.raises(AttributeError):
        stanza.no_such_attribute  # noqa: B018
