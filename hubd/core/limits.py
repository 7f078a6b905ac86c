"""Abuse limits: per-JID request rates, request sizes, subscriptions, readouts in flight.

Anyone on the XMPP network can send the hub stanzas, and even a trusted
account can be misused (a stolen phone, a runaway script).  These limits make
every such flood cost the sender, not the hub: a request over a limit gets an
XMPP error at once (``resource-constraint`` for a rate, ``not-acceptable``
for a size or a count) and nothing is queued or allocated for it.

The per-JID tables are bounded: a flood from many JIDs (spoofing is not
possible on XMPP, but accounts are cheap) evicts the least recently seen
senders instead of growing memory.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from pydantic import BaseModel, ConfigDict, Field

from hubd.errors import HubdError


class LimitSettings(BaseModel):
    """``limits:``: how much one sender may ask of the hub (defaults suit a house)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: float = Field(
        default=600.0, gt=0, le=60_000, description="sustained requests per bare JID"
    )
    burst: int = Field(default=100, ge=1, le=10_000, description="requests allowed at once")
    max_request_elements: int = Field(
        default=256, ge=8, le=100_000, description="XML elements in one request"
    )
    max_request_depth: int = Field(
        default=8, ge=3, le=100, description="nesting depth of one request"
    )
    max_value_length: int = Field(
        default=4096, ge=64, le=1_000_000, description="characters in one attribute or text"
    )
    max_subscriptions: int = Field(
        default=64, ge=1, le=100_000, description="event subscriptions per bare JID"
    )
    max_readouts: int = Field(
        default=16, ge=1, le=10_000, description="readouts in progress or scheduled per JID"
    )
    tracked_senders: int = Field(
        default=4096, ge=16, le=1_000_000, description="senders remembered by the rate limit"
    )


class LimitExceeded(HubdError):
    """A request went over one of the abuse limits."""


class RateLimited(LimitExceeded):
    """Too many requests from one sender: ``resource-constraint``, try again later."""


class PolicyViolation(LimitExceeded):
    """A request too large, or one subscription too many: ``not-acceptable``."""


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """A token bucket per bare JID, in a table of bounded size (least recently seen evicted).

    An evicted sender comes back with a full bucket: the table bounds memory,
    not fairness, and ``tracked_senders`` far exceeds the people of a house.
    """

    def __init__(
        self, settings: LimitSettings | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings or LimitSettings()
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """Senders currently tracked (never above ``tracked_senders``)."""
        return len(self._buckets)

    def allow(self, jid: str) -> bool:
        """Take one token for ``jid`` (full or bare); False when its bucket is empty."""
        key = jid.split("/", 1)[0].lower()
        now = self.clock()
        rate = self.settings.requests_per_minute / 60.0
        capacity = float(self.settings.burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(capacity, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.settings.tracked_senders:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            # max(): a clock that went backwards must not drain the bucket.
            bucket.tokens = min(capacity, bucket.tokens + max(now - bucket.stamp, 0.0) * rate)
            bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def check(self, jid: str) -> None:
        """Like :meth:`allow`, raising :class:`RateLimited` when over the limit."""
        if not self.allow(jid):
            raise RateLimited("Too many requests; slow down and try again in a moment.")


@dataclass(frozen=True, slots=True)
class Shape:
    """The size of an XML payload: elements, depth, longest attribute value or text."""

    elements: int
    depth: int
    longest: int


def measure(element: Element, stop_after: int | None = None) -> Shape:
    """Measure ``element`` without recursion (a deep tree cannot exhaust the stack).

    ``stop_after`` ends the walk early once that many elements were seen: the
    caller only needs to know the payload is too large.
    """
    count = 0
    deepest = 0
    longest = 0
    stack: list[tuple[Element, int]] = [(element, 1)]
    while stack:
        current, depth = stack.pop()
        count += 1
        deepest = max(deepest, depth)
        longest = max(
            longest,
            len(current.text or ""),
            len(current.tail or "") if depth > 1 else 0,
            *(len(k) + len(v) for k, v in current.attrib.items()),
        )
        if stop_after is not None and count > stop_after:
            break
        stack.extend((child, depth + 1) for child in current)
    return Shape(count, deepest, longest)


def check_payload(element: Element, settings: LimitSettings) -> None:
    """Raise :class:`PolicyViolation` when ``element`` is larger than a request may be."""
    shape = measure(element, stop_after=settings.max_request_elements)
    if shape.elements > settings.max_request_elements:
        raise PolicyViolation(
            f"Request too large: at most {settings.max_request_elements} elements."
        )
    if shape.depth > settings.max_request_depth:
        raise PolicyViolation(f"Request nested too deeply: at most {settings.max_request_depth}.")
    if shape.longest > settings.max_value_length:
        raise PolicyViolation(
            f"A value in the request is too long: at most {settings.max_value_length} characters."
        )
