"""Which readings the history keeps (hubd/events/history_sampling.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hubd.core.model import FieldValue, Value
from hubd.core.settings import EventsSettings
from hubd.events.history_sampling import HistorySampler

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(sampler: HistorySampler, readings: list[tuple[float, Value]]) -> list[float]:
    """The seconds (after T0) of the readings of one field that are stored."""
    kept = []
    for second, value in readings:
        rows = sampler.rows("n", [FieldValue("x", value, T0 + timedelta(seconds=second))])
        kept.extend(row.ts - T0.timestamp() for row in rows)
    return kept


def test_a_number_that_keeps_changing_is_stored_once_per_sample_period() -> None:
    sampler = HistorySampler(EventsSettings())  # the defaults: 60 s
    readings: list[tuple[float, Value]] = [(10.0 * i, Decimal(i)) for i in range(19)]
    # Every 10 s a new value: the first, then the first reading 60 s after each stored one.
    assert stored(sampler, readings) == [0, 60, 120, 180]


def test_the_value_a_burst_ends_on_is_stored_with_the_next_reading_after_the_period() -> None:
    sampler = HistorySampler(EventsSettings(history_sample=60))
    readings: list[tuple[float, Value]] = [(0, 1), (5, 2), (6, 3), (100, 3)]
    assert stored(sampler, readings) == [0, 100]
    row = sampler.rows("n", [FieldValue("x", 4, T0 + timedelta(seconds=101))])
    assert row == [], "4 came 1 s after the stored 3"


def test_a_switch_is_stored_at_every_change() -> None:
    sampler = HistorySampler(EventsSettings(history_sample=60))
    readings: list[tuple[float, Value]] = [(0, False), (1, True), (2, False), (3, False)]
    assert stored(sampler, readings) == [0, 1, 2]
    text = HistorySampler(EventsSettings(history_sample=60))
    assert stored(text, [(0, "open"), (1, "closed")]) == [0, 1]


def test_an_unchanged_field_is_stored_every_history_interval() -> None:
    sampler = HistorySampler(EventsSettings(history_interval=300, history_sample=60))
    readings: list[tuple[float, Value]] = [(30.0 * i, Decimal("7.5")) for i in range(21)]
    assert stored(sampler, readings) == [0, 300, 600]


def test_sample_zero_stores_every_change() -> None:
    sampler = HistorySampler(EventsSettings(history_sample=0))
    assert stored(sampler, [(0, 1), (1, 2), (2, 2), (3, 3)]) == [0, 1, 3]


def test_a_reading_from_before_a_clock_jump_back_is_stored() -> None:
    # The clock was set back by an hour: the period runs on the readings' own times,
    # so the first reading after the jump is not held back for an hour.
    sampler = HistorySampler(EventsSettings(history_sample=60))
    assert stored(sampler, [(3600, 1), (0, 2), (10, 3), (60, 4)]) == [3600, 0, 60]
