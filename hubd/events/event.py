"""What an event is, and the port it leaves the engine through.

:class:`Event` carries the values of one node for one subscriber, in the form
the outbox keeps; :class:`EventSink` is what the delivery side (the XMPP
client) implements, so the engine never knows who carries its events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from hubd.core.model import FieldValue
from hubd.events.subscriptions import decode_value, encode_value


@dataclass(frozen=True, slots=True)
class Event:
    """Values of one node for one subscriber, under the subscription's seqnr."""

    subscriber: str
    target: str
    node_id: str
    seqnr: int
    values: tuple[FieldValue, ...]
    created: datetime
    channel: str = "iot"  # "iot": XEP-0323 fields; "chat": a line of text for a person
    dropped: int = 0  # events dropped for this subscriber before this one (queue full)
    delayed: bool = False  # it waited in the outbox: delivery says so (XEP-0203)

    def to_json_text(self, values: str) -> str:
        """:meth:`to_json` as text, around ``values`` already encoded (shared by subscribers)."""
        data = self.to_json(encode=False)
        return f'{json.dumps(data)[:-1]}, "values": {values}}}'

    def to_json(self, encode: bool = True) -> dict[str, Any]:
        """JSON for the outbox (without ``values`` when not ``encode``)."""
        data = {
            "subscriber": self.subscriber,
            "target": self.target,
            "node_id": self.node_id,
            "seqnr": self.seqnr,
            "created": self.created.isoformat(),
            "channel": self.channel,
        }
        if encode:
            data["values"] = [encode_value(v) for v in self.values]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], dropped: int = 0) -> Event:
        """Rebuild an outbox event."""
        return cls(
            subscriber=data["subscriber"],
            target=data["target"],
            node_id=data["node_id"],
            seqnr=int(data["seqnr"]),
            values=tuple(decode_value(v) for v in data["values"]),
            created=datetime.fromisoformat(data["created"]),
            channel=str(data.get("channel", "iot")),
            dropped=dropped,
        )


def outbox_texts(events: Iterable[Event]) -> list[str]:
    """The events' JSON for the outbox.  One value fires for every subscriber of its
    node: its values are encoded once."""
    encoded: dict[tuple[int, ...], str] = {}
    texts = []
    for event in events:
        key = tuple(map(id, event.values))
        values = encoded.get(key)
        if values is None:
            values = encoded[key] = json.dumps([encode_value(v) for v in event.values])
        texts.append(event.to_json_text(values))
    return texts


class EventSink(Protocol):
    """The delivery side (the XMPP client)."""

    def can_deliver(self, subscriber: str) -> bool:
        """True while connected and the subscriber is believed reachable."""

    def deliver(self, event_id: int, event: Event) -> None:
        """Send one event; report back through acked()/failed()."""

    def end_batch(self) -> None:
        """A batch of deliveries is complete (a good moment to ask for acks)."""

    # Optional: ``deliver_batch(events: Sequence[tuple[int, Event]])`` sends several
    # fresh events of one subscription at once (same subscriber, target, node,
    # seqnr and channel, in order); each is reported through acked()/failed().
