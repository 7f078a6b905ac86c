"""Abuse limits: the token bucket, its bounded table, and request shapes."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import pytest

from hubd.core.limits import (
    LimitSettings,
    PolicyViolation,
    RateLimited,
    RateLimiter,
    check_payload,
    measure,
)
from hubd.xmpp.errors import condition_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(LimitSettings(burst=3, requests_per_minute=60), clock=clock)
    assert [limiter.allow("bob@example.org/x") for _ in range(4)] == [True, True, True, False]
    clock.now += 1.0  # one token per second
    assert limiter.allow("BOB@example.org/y")
    assert not limiter.allow("bob@example.org")
    # Others are not affected by bob's flood.
    assert limiter.allow("carol@example.org")
    clock.now += 100.0  # never more than the burst, however long the pause
    assert [limiter.allow("bob@example.org") for _ in range(4)] == [True, True, True, False]


def test_a_clock_going_backwards_does_not_drain_or_fill() -> None:
    clock = Clock()
    clock.now = 100.0
    limiter = RateLimiter(LimitSettings(burst=1, requests_per_minute=60), clock=clock)
    assert limiter.allow("a@b")
    clock.now = 50.0
    assert not limiter.allow("a@b")


def test_the_table_stays_bounded_under_a_flood_of_senders() -> None:
    clock = Clock()
    limiter = RateLimiter(LimitSettings(tracked_senders=16, burst=1), clock=clock)
    for index in range(10_000):
        limiter.allow(f"user{index}@flood.example")
    assert len(limiter) == 16
    # The most recent senders are the ones remembered.
    assert not limiter.allow("user9999@flood.example")


def test_check_raises_resource_constraint() -> None:
    limiter = RateLimiter(LimitSettings(burst=1))
    limiter.check("a@b")
    with pytest.raises(RateLimited) as info:
        limiter.check("a@b")
    condition = condition_for(info.value)
    assert (condition.type, condition.condition) == ("wait", "resource-constraint")


def _chain(depth: int) -> Element:
    root = current = Element("a")
    for _ in range(depth - 1):
        current = SubElement(current, "a")
    return root


def test_measure_is_iterative_and_stops_early() -> None:
    deep = _chain(100_000)  # far beyond the recursion limit
    shape = measure(deep)
    assert (shape.elements, shape.depth) == (100_000, 100_000)
    assert measure(deep, stop_after=10).elements == 11


def test_check_payload_bounds_count_depth_and_lengths() -> None:
    settings = LimitSettings(max_request_elements=10, max_request_depth=4, max_value_length=100)
    check_payload(_chain(4), settings)
    with pytest.raises(PolicyViolation, match="nested"):
        check_payload(_chain(5), settings)
    wide = Element("req")
    for _ in range(10):
        SubElement(wide, "node")
    with pytest.raises(PolicyViolation, match="too large") as info:
        check_payload(wide, settings)
    condition = condition_for(info.value)
    assert (condition.type, condition.condition) == ("modify", "not-acceptable")
    with pytest.raises(PolicyViolation, match="too long"):
        check_payload(Element("req", {"nodeId": "x" * 200}), settings)
    text = Element("req")
    text.text = "y" * 101
    with pytest.raises(PolicyViolation, match="too long"):
        check_payload(text, settings)
