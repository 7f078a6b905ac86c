"""Which readings the history keeps (SD-card wear: bench/wear.py, bench/RESULTS.md).

A field's reading is stored when it changed since the field's last stored
reading, or when ``events.history_interval`` has passed since then (so that an
unchanged field still shows in a chart).  A *number* that keeps changing is
stored at most once per ``events.history_sample`` seconds: the reading that
comes after the sample period (the latest value, at its own time) is stored,
the ones in between are not.  A switch, a state or a text is stored at every
change, so ``history`` counts every on and off.

Every stored row costs the SD card about twice its size, once in the history
and once more in its index and the hourly pruning: a sensor that sends a new
number every few seconds would otherwise be most of what hubd writes.  What a
sample period costs: a peak shorter than it may be missing from a chart, and
the last value of a burst of changes is stored up to one period late.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from hubd.core.model import FieldValue
from hubd.core.settings import EventsSettings
from hubd.errors import StoreUnavailable
from hubd.events.clock_steps import ClockSteps
from hubd.events.store import Store
from hubd.events.tables import HistoryRow, history_value

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Mark:
    value: object
    stored: datetime


def is_number(value: object) -> bool:
    """Whether a value is sampled (a number; a bool is a switch, never sampled)."""
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


class HistorySampler:
    """Chooses the readings to store, field by field (on the event loop)."""

    def __init__(self, settings: EventsSettings) -> None:
        self.interval = timedelta(seconds=settings.history_interval)
        self.sample = timedelta(seconds=settings.history_sample)
        self._marks: dict[tuple[str, str], _Mark] = {}

    def shift(self, delta: timedelta) -> None:
        """Move the marks by a step of the wall clock (hubd/events/clock_steps.py)."""
        for mark in self._marks.values():
            mark.stored += delta

    def rows(self, node_id: str, values: Sequence[FieldValue]) -> list[HistoryRow]:
        """The rows of ``values`` the history keeps."""
        rows: list[HistoryRow] = []
        for value in values:
            key = (node_id, value.name)
            mark = self._marks.get(key)
            if mark is not None:
                since = value.timestamp - mark.stored
                if mark.value == value.value:
                    if since < self.interval:
                        continue
                elif is_number(value.value) and timedelta(0) <= since < self.sample:
                    # (A reading older than the mark, after the clock was set back,
                    # is stored: the period is measured on the readings' own times.)
                    continue
            self._marks[key] = _Mark(value.value, value.timestamp)
            rows.append(
                HistoryRow(node_id, value.name, value.timestamp.timestamp(), history_value(value))
            )
        return rows


async def prune_history(store: Store, clock: ClockSteps, cutoff: datetime) -> None:
    """Delete the readings older than ``cutoff`` (every PRUNE_EVERY, from the engine),
    after moving the rows of a clock step so none is pruned on the wrong scale."""
    await clock.shift_history(store)
    try:
        pruned = await store.prune_history(cutoff.timestamp())
    except StoreUnavailable:
        pruned = 0  # logged by the store; the next round prunes it
    if pruned:
        _LOGGER.debug("pruned %d history rows", pruned)
