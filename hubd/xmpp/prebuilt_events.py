"""Event messages written from a text prebuilt per subscription: only id, time and values change.

Every event of a subscription is the same ``<message to id><fields seqnr
done><node ...><timestamp value><numeric name unit momentary value/>...``
but for the message id, the timestamp and the values.  Building that as
elements and serialising it with slixmpp's ``tostring`` was ~180 µs of the
path from a sensor's line to the socket on a loop that slept since the last
reading (issue 14 §2); filling four strings into a prebuilt text is a few.

The text is made from the same stanza the slow path sends (:func:`build_fields`
and :func:`event_message`, serialised by slixmpp's ``tostring``) with
placeholders in the changing attributes, so it is byte for byte what slixmpp
would write; each filled-in value is escaped with slixmpp's ``escape``, as
``tostring`` escapes attributes.  tests/xmpp/test_prebuilt_events.py compares
the two for every field type, flags, units, sources and text to escape.

Only the common shape is prebuilt: one node, every value at one instant (one
``<timestamp>``), no ``<delay/>``, no dropped-events field.  Anything else
answers ``None`` and goes the slow way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slixmpp import ClientXMPP
from slixmpp.xmlstream.tostring import escape, tostring

from hubd.core import xsd
from hubd.core.model import FieldSpec, FieldValue
from hubd.events.event import Event
from hubd.xmpp.direct_send import can_write_prebuilt, event_message, write_prebuilt
from hubd.xmpp.sensordata_xml import NodeReadings, NodeRef, build_fields, format_value

#: Placeholders: private-use characters, which no serialisation step escapes or changes.
_MARK = "\ue000"
_PLACEHOLDER = re.compile(f"{_MARK}([a-z0-9]+){_MARK}")
_ID, _STAMP = "id", "ts"
#: What slixmpp's ``escape`` changes; text without any of them is left as it is.
_SPECIAL = re.compile("[&<>'\"]")
#: Subscriptions times field sets is small; the bound only stops growth over a long run.
CACHE_LIMIT = 512

_Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    parts: tuple[str, ...]  # the text between the placeholders
    order: tuple[int, ...]  # which fill-in goes after parts[i]: 0 id, 1 time, 2.. values
    specs: tuple[FieldSpec, ...]  # the specs it was made for (the key holds their ids)


def fields_message(
    xmpp: ClientXMPP, target: str, seqnr: int, ref: NodeRef, message_id: str, pairs: Any
) -> Any:
    """The event's stanza as the slow path builds it (the text is made from the same)."""
    fields = build_fields(seqnr, [NodeReadings(ref, pairs)], done=True)
    return event_message(xmpp, target, message_id, fields)


class EventTexts:
    """Prebuilt event texts by target, seqnr, node and field specs with their qualities."""

    def __init__(self, xmpp: ClientXMPP) -> None:
        self.xmpp = xmpp
        self._templates: dict[_Key, _Template] = {}

    def write(
        self,
        event: Event,
        ref: NodeRef,
        message_id: str,
        pairs: Sequence[tuple[FieldSpec, FieldValue]],
    ) -> bool:
        """Write ``event`` from its prebuilt text now; False (nothing sent) when it cannot."""
        if not can_write_prebuilt(self.xmpp):
            return False
        target, seqnr = event.target, event.seqnr
        text = self.text(target, seqnr, ref, message_id, pairs)
        if text is None:
            return False
        xmpp, mid = self.xmpp, message_id
        write_prebuilt(xmpp, text, lambda: fields_message(xmpp, target, seqnr, ref, mid, pairs))
        return True

    def text(
        self,
        target: str,
        seqnr: int,
        ref: NodeRef,
        message_id: str,
        pairs: Sequence[tuple[FieldSpec, FieldValue]],
    ) -> str | None:
        """The serialised message of one event, or None when it is not of the prebuilt shape."""
        if not pairs:
            return None
        stamp = pairs[0][1].timestamp
        if any(value.timestamp != stamp for _, value in pairs):
            return None  # several <timestamp> elements: the slow path
        # Specs by identity (a reload makes new ones); quality changes the flags.
        key = (target, seqnr, ref, *[(id(spec), value.quality) for spec, value in pairs])
        template = self._templates.get(key)
        if template is None or any(
            a is not b for a, b in zip(template.specs, (spec for spec, _ in pairs), strict=True)
        ):
            template = self._make(target, seqnr, ref, pairs)
            if template is None:
                return None
            if len(self._templates) >= CACHE_LIMIT:
                self._templates.clear()
            self._templates[key] = template
        use_cdata = bool(getattr(self.xmpp, "use_cdata", False))
        fills = [message_id, xsd.format_datetime(stamp)]
        fills.extend(format_value(spec.type, value.value) for spec, value in pairs)
        fills = [escape(t, use_cdata) if _SPECIAL.search(t) else t for t in fills]
        out = [template.parts[0]]
        for index, part in zip(template.order, template.parts[1:], strict=True):
            out.append(fills[index])
            out.append(part)
        return "".join(out)

    def _make(
        self,
        target: str,
        seqnr: int,
        ref: NodeRef,
        pairs: Sequence[tuple[FieldSpec, FieldValue]],
    ) -> _Template | None:
        stanza = fields_message(self.xmpp, target, seqnr, ref, _MARK + _ID + _MARK, pairs)
        stamp = stanza.xml[0][0][0]  # message / fields / node / timestamp
        stamp.set("value", _MARK + _STAMP + _MARK)
        for index, field in enumerate(stamp):
            field.set("value", f"{_MARK}v{index}{_MARK}")
        text = tostring(stanza.xml, xmlns=self.xmpp.default_ns, stream=self.xmpp, top_level=True)
        pieces = _PLACEHOLDER.split(text)
        names = pieces[1::2]
        wanted = [_ID, _STAMP, *(f"v{i}" for i in range(len(pairs)))]
        if sorted(names) != sorted(wanted) or _MARK in "".join(pieces[0::2]):
            return None  # a placeholder in the target or a node id: not worth handling
        return _Template(
            parts=tuple(pieces[0::2]),
            order=tuple(wanted.index(name) for name in names),
            specs=tuple(spec for spec, _ in pairs),
        )
