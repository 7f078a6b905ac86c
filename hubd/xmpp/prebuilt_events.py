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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.stanza import Message
from slixmpp.xmlstream.tostring import escape, tostring

from hubd.core import xsd
from hubd.core.model import FieldSpec, FieldValue
from hubd.events.event import Event
from hubd.xmpp.direct_send import (
    can_write_prebuilt,
    message_element,
    write_prebuilt,
)
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
    form: str  # str.format text: {0} the id, {1} the time, {2}... the values
    # Kept alive with the template: the key holds their ids, which stay theirs.
    specs: tuple[FieldSpec, ...]


def fields_element(target: str, seqnr: int, ref: NodeRef, message_id: str, pairs: Any) -> Element:
    """The element of :func:`fields_message`."""
    fields = build_fields(seqnr, [NodeReadings(ref, pairs)], done=True)
    return message_element(target, message_id, fields)


def fields_message(
    xmpp: ClientXMPP, target: str, seqnr: int, ref: NodeRef, message_id: str, pairs: Any
) -> Any:
    """The event's stanza as the slow path builds it (the text is made from the same)."""
    return xmpp.Message(xml=fields_element(target, seqnr, ref, message_id, pairs))


class MessageBuiltOnUse(Message):
    """The stanza of a written prebuilt text, its elements built when something first reads it.

    XEP-0198 keeps the stanza of every message sent, to send it again on a
    resumed stream and to name it in ``stanza_acked``, and reads it only then;
    the filters it passes (``message_neutral`` ones) only test its class.
    Building its elements right after the write took ~150 µs of CPU while the
    message travelled to the subscriber (issue 14 §2).  Now the first reader
    builds them, exactly as :func:`fields_message` would: ``__getattr__`` is
    only called for an attribute the instance lacks, and until it is built it
    has none but the pending build.  Its ``id`` is known without building (the
    acknowledgement handlers read only that), so an event acknowledged in
    the same stream is never built at all.
    """

    def __init__(self, xmpp: ClientXMPP, message_id: str, build: Callable[[], Element]) -> None:
        # Message.__init__ is deferred to the first use (see __getattr__).
        self.__dict__["_hubd_build"] = (xmpp, message_id, build)

    def __getitem__(self, key: str) -> Any:
        pending = self.__dict__.get("_hubd_build")
        if pending is not None and key == "id":
            return pending[1]
        return super().__getitem__(key)

    def __getattr__(self, name: str) -> Any:
        pending = self.__dict__.pop("_hubd_build", None)
        if pending is None:  # built (or building): a missing attribute is missing
            raise AttributeError(name)
        xmpp, _, build = pending
        init: Any = Message.__init__  # untyped in slixmpp
        init(self, xmpp, xml=build())
        self["lang"] = xmpp.default_lang  # as xmpp.Message() does
        return getattr(self, name)


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
        write_prebuilt(
            self.xmpp,
            text,
            lambda: MessageBuiltOnUse(
                self.xmpp,
                message_id,
                lambda: fields_element(target, seqnr, ref, message_id, pairs),
            ),
        )
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
        if len(pairs) > 1 and any(value.timestamp != stamp for _, value in pairs):
            return None  # several <timestamp> elements: the slow path
        # Specs by identity (a reload makes new ones); quality changes the flags.
        key = (target, seqnr, ref, *[(id(spec), value.quality) for spec, value in pairs])
        template = self._templates.get(key)
        if template is None:
            template = self._make(target, seqnr, ref, pairs)
            if template is None:
                return None
            if len(self._templates) >= CACHE_LIMIT:
                self._templates.clear()
            self._templates[key] = template
        fills = [message_id, xsd.format_datetime(stamp)]
        fills.extend(format_value(spec.type, value.value) for spec, value in pairs)
        if _SPECIAL.search("".join(fills)):
            use_cdata = self.xmpp.use_cdata
            fills = [escape(text, use_cdata) for text in fills]
        return template.form.format(*fills)

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
        literal = pieces[0::2]
        if sorted(names) != sorted(wanted) or any(_MARK in part for part in literal):
            return None  # a placeholder in the target or a node id: not worth handling
        form = [literal[0].replace("{", "{{").replace("}", "}}")]
        for name, part in zip(names, literal[1:], strict=True):
            form.append(f"{{{wanted.index(name)}}}")
            form.append(part.replace("{", "{{").replace("}", "}}"))
        return _Template("".join(form), tuple(spec for spec, _ in pairs))
