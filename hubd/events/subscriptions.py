"""Event subscriptions: who wants which changes of which node, and when they fire.

Pure (no XMPP, no I/O), after the IoT events draft (digest §2): one
subscription per subscriber and node; per-field thresholds ``changed_up`` /
``changed_down`` measured against the value last *reported* to that
subscriber (hysteresis: the reference moves only when an event fires); no
threshold means any change fires; ``min_interval`` rate-limits, and
``max_interval`` sends the current values even without a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from hubd.core.model import (
    Category,
    FieldSpec,
    FieldType,
    FieldValue,
    Value,
    format_lexical,
    parse_lexical,
    value_type,
)
from hubd.events.tables import StoredSubscription


@dataclass(frozen=True, slots=True)
class FieldRule:
    """The condition of one field: change thresholds, or a level to cross.

    No threshold means any change.  ``above``/``below`` (for people's ``watch
    temperature > 25``) fire when the value comes to lie beyond the level,
    once per crossing.
    """

    name: str
    changed_up: Decimal | None = None
    changed_down: Decimal | None = None
    current: Decimal | None = None
    above: Decimal | None = None
    below: Decimal | None = None

    @property
    def level(self) -> bool:
        """True for a level rule (above/below) rather than a change rule."""
        return self.above is not None or self.below is not None

    def beyond(self, value: Value) -> bool:
        """Whether ``value`` lies beyond the level."""
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            return False
        if self.above is not None and value > self.above:
            return True
        return self.below is not None and value < self.below


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionSpec:
    """What a subscriber asked for (the ``subscribe`` request, parsed)."""

    subscriber: str  # bare JID: one subscription per subscriber and node
    target: str  # the full JID events are sent to
    node_id: str
    seqnr: int
    rules: tuple[FieldRule, ...] = ()  # empty: every field of the node
    categories: frozenset[Category] = frozenset()  # empty: every category
    min_interval: timedelta | None = None
    max_interval: timedelta | None = None
    max_age: timedelta | None = None
    req: bool = False
    channel: str = "iot"  # "iot": XEP-0323 fields messages; "chat": text for people

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the store."""
        return {
            "subscriber": self.subscriber,
            "target": self.target,
            "node_id": self.node_id,
            "seqnr": self.seqnr,
            "rules": [
                [
                    r.name,
                    _dec(r.changed_up),
                    _dec(r.changed_down),
                    _dec(r.current),
                    _dec(r.above),
                    _dec(r.below),
                ]
                for r in self.rules
            ],
            "categories": sorted(self.categories),
            "min_interval": _secs(self.min_interval),
            "max_interval": _secs(self.max_interval),
            "max_age": _secs(self.max_age),
            "req": self.req,
            "channel": self.channel,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SubscriptionSpec:
        """Rebuild a spec stored with :meth:`to_json`."""
        return cls(
            subscriber=data["subscriber"],
            target=data["target"],
            node_id=data["node_id"],
            seqnr=int(data["seqnr"]),
            rules=tuple(
                FieldRule(rule[0], *(_undec(x) for x in rule[1:])) for rule in data["rules"]
            ),
            categories=frozenset(Category(c) for c in data["categories"]),
            min_interval=_unsecs(data["min_interval"]),
            max_interval=_unsecs(data["max_interval"]),
            max_age=_unsecs(data["max_age"]),
            req=bool(data["req"]),
            channel=str(data.get("channel", "iot")),
        )


@dataclass
class Subscription:
    """A live subscription: its spec and what was last reported."""

    spec: SubscriptionSpec
    reference: dict[str, Value] = field(default_factory=dict)
    last_sent: datetime | None = None
    pending: dict[str, FieldValue] = field(default_factory=dict)  # held by min_interval
    release_armed: bool = False  # a timer will send ``pending`` when min_interval allows
    seen: dict[str, Value] = field(default_factory=dict)  # last values, for level rules

    @property
    def key(self) -> tuple[str, str, str]:
        """(subscriber, node id, channel): one subscription of each per subscriber and node."""
        return self.spec.subscriber, self.spec.node_id, self.spec.channel

    def wants(self, spec: FieldSpec) -> bool:
        """Whether field ``spec`` is covered by this subscription."""
        if self.spec.categories and not (self.spec.categories & spec.categories):
            return False
        return not self.spec.rules or any(r.name == spec.name for r in self.spec.rules)

    def rule(self, name: str) -> FieldRule:
        """The rule of field ``name`` (a plain any-change rule when none is given)."""
        for rule in self.spec.rules:
            if rule.name == name:
                return rule
        return FieldRule(name)

    def seed(self, current: Iterable[FieldValue]) -> None:
        """Set the references: ``currentValue`` where given, else the current values."""
        for value in current:
            rule = self.rule(value.name)
            self.reference[value.name] = rule.current if rule.current is not None else value.value
            self.seen[value.name] = value.value
        for rule in self.spec.rules:
            if rule.current is not None:
                self.reference.setdefault(rule.name, rule.current)

    def triggered(
        self, values: Sequence[FieldValue], specs: Mapping[str, FieldSpec]
    ) -> list[FieldValue]:
        """The values that meet their field's condition against the last reported value."""
        fired = []
        for value in values:
            spec = specs.get(value.name)
            if spec is None or not self.wants(spec):
                continue
            rule = self.rule(value.name)
            if rule.level:
                previous = self.seen.get(value.name)
                if rule.beyond(value.value) and (previous is None or not rule.beyond(previous)):
                    fired.append(value)
            else:
                reference = self.reference.get(value.name)
                if reference is None or _fires(rule, value.value, reference):
                    fired.append(value)
            self.seen[value.name] = value.value
        return fired

    def hold_until(self, now: datetime) -> datetime | None:
        """When min_interval allows the next event, if that is in the future."""
        if self.spec.min_interval is None or self.last_sent is None:
            return None
        ready = self.last_sent + self.spec.min_interval
        return ready if ready > now else None

    def reported(self, values: Sequence[FieldValue], now: datetime) -> None:
        """Record that ``values`` were sent: they become the new references."""
        for value in values:
            self.reference[value.name] = value.value
            self.pending.pop(value.name, None)
        self.last_sent = now

    def stored(self) -> StoredSubscription:
        """The row the store keeps for this subscription."""
        spec = self.spec
        return StoredSubscription(
            spec.subscriber,
            spec.node_id,
            spec.target,
            spec.to_json(),
            self.state_json(),
            spec.channel,
        )

    def state_json(self) -> dict[str, Any]:
        """References and last-sent time, for the store."""
        return {
            "last_sent": self.last_sent.isoformat() if self.last_sent else None,
            "reference": {
                name: [value_type(value).value, format_lexical(value_type(value), value)]
                for name, value in self.reference.items()
            },
        }

    def load_state(self, data: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_json` saved."""
        stamp = data.get("last_sent")
        self.last_sent = datetime.fromisoformat(stamp) if stamp else None
        for name, (kind, text) in data.get("reference", {}).items():
            self.reference[name] = parse_lexical(FieldType(kind), text)


def _fires(rule: FieldRule, value: Value, reference: Value) -> bool:
    delta = _delta(value, reference)
    if rule.changed_up is None and rule.changed_down is None:
        return delta != 0
    up = rule.changed_up is not None and delta >= rule.changed_up
    down = rule.changed_down is not None and -delta >= rule.changed_down
    return up or down


def _delta(value: Value, reference: Value) -> Decimal:
    """How far ``value`` moved from ``reference`` in the draft's magnitudes (§2.2)."""
    if isinstance(value, bool) or isinstance(reference, bool):
        return Decimal(int(bool(value))) - Decimal(int(bool(reference)))
    if isinstance(value, int | Decimal) and isinstance(reference, int | Decimal):
        return Decimal(value) - Decimal(reference)
    if isinstance(value, datetime) and isinstance(reference, datetime):
        try:
            return Decimal(str((value - reference).total_seconds()))
        except TypeError:  # naive against aware
            return (
                Decimal(0)
                if value.replace(tzinfo=None) == reference.replace(tzinfo=None)
                else Decimal(1)
            )
    if isinstance(value, timedelta) and isinstance(reference, timedelta):
        return Decimal(str((value - reference).total_seconds()))
    if value == reference:
        return Decimal(0)
    # Strings, enums, and anything else: a change counts as 1, ordered lexically.
    return Decimal(1) if str(value) > str(reference) else Decimal(-1)


def encode_value(value: FieldValue) -> dict[str, Any]:
    """A field value as JSON (type, lexical form, timestamp), for the store."""
    kind = value_type(value.value)
    return {
        "n": value.name,
        "t": kind.value,
        "v": format_lexical(kind, value.value),
        "ts": value.timestamp.isoformat(),
        "q": sorted(value.quality),
    }


def decode_value(data: Mapping[str, Any]) -> FieldValue:
    """The field value :func:`encode_value` stored."""
    from hubd.core.model import Quality

    return FieldValue(
        data["n"],
        parse_lexical(FieldType(data["t"]), data["v"]),
        datetime.fromisoformat(data["ts"]),
        frozenset(Quality(q) for q in data["q"]),
    )


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _secs(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _unsecs(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
