"""Readings taken before a step of the wall clock, moved onto the clock's new scale.

A Pi without a real-time clock boots with a wrong clock (2019, or the last
shutdown with ``fake-hwclock``), takes readings, and then NTP sets the clock:
it steps by minutes or years (see ``hubd/core/clock.py``).  hubd trusts the
clock as it is *after* a step: everything this process stamped before it is
moved by the step's size, so that the history, the events waiting for their
subscribers and their XEP-0203 delay stamps tell the time the reading was
really taken (within the clock's error after the step):

* in memory at once (the engine's queue, values not yet in the history,
  values held by ``minInterval``, each subscription's last-sent time, the
  hub's latest values): :func:`move_value` and friends;
* in the store's history, rows stamped by this process since it started
  (:attr:`ClockSteps.since` up to the step), by :func:`shift_history_rows`
  before the next rows are written;
* in the outbox, at delivery: an event is moved when its id was given out by
  this process before the step (:meth:`ClockSteps.restamp`), which is exact
  also for a step backwards, where old and new times overlap.

Timers (``minInterval``/``maxInterval``) run on the event loop's monotonic
clock; their comparisons with the wall clock stay right because the
last-sent times move with the step.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from hubd.core.clock import ClockStep, ClockWatch, clock_is_plausible, describe_step
from hubd.core.model import FieldValue
from hubd.core.node import Node
from hubd.errors import StoreUnavailable
from hubd.events.event import Event
from hubd.events.subscriptions import Subscription


class History(Protocol):
    """The store's part that moves history rows (hubd/events/store.py imports this module)."""

    async def shift_history(self, start: float, end: float, delta: float) -> int:
        """Move readings stamped from ``start`` to ``end`` by ``delta`` seconds."""


_LOGGER = logging.getLogger(__name__)


def move_value(value: FieldValue, delta: timedelta) -> FieldValue:
    """The value with its timestamp moved by ``delta``."""
    return replace(value, timestamp=value.timestamp + delta)


def move_event(event: Event, delta: timedelta) -> Event:
    """The event with its reading time and its values' timestamps moved by ``delta``."""
    values = tuple(move_value(v, delta) for v in event.values)
    return replace(event, values=values, created=event.created + delta)


def move_subscription(sub: Subscription, delta: timedelta) -> None:
    """Move what a subscription remembers of time (last sent, values held back)."""
    if sub.last_sent is not None:
        sub.last_sent += delta
    sub.pending = {name: move_value(v, delta) for name, v in sub.pending.items()}


def move_nodes(nodes: Iterable[Node], delta: timedelta, keep: Iterable[FieldValue]) -> None:
    """Move the hub's latest values, except ``keep`` (the readings taken after the step)."""
    fresh = {id(v) for v in keep}
    for node in nodes:
        node.last_changed += delta
        for name, value in node.cache.items():
            if id(value) not in fresh:
                node.cache[name] = move_value(value, delta)


def shift_history_rows(db: sqlite3.Connection, start: float, end: float, delta: float) -> int:
    """Move readings stamped from ``start`` to ``end`` (epoch seconds) by ``delta``, in
    the indexed history and in the recent readings not merged into it yet."""
    moved_rows = 0
    for table in ("history", "recent"):
        rows = db.execute(
            f"SELECT rowid, ts, value FROM {table} WHERE ts >= ? AND ts <= ?",
            (start, end),
        ).fetchall()
        updates = []
        for rowid, ts, text in rows:
            moved = ts + delta
            value = json.loads(text)
            if "ts" in value:  # a row written before the time was only its column
                value["ts"] = datetime.fromtimestamp(moved, UTC).isoformat()
                text = json.dumps(value)
            updates.append((moved, text, rowid))
        db.executemany(f"UPDATE {table} SET ts = ?, value = ? WHERE rowid = ?", updates)
        moved_rows += len(updates)
    return moved_rows


class ClockSteps:
    """The engine's record of clock steps: what to move, in the store and in the outbox."""

    def __init__(self, watch: ClockWatch | None) -> None:
        self.watch = watch
        #: This process's first timestamp, on the clock's current scale.
        self.since: datetime | None = None if watch is None else watch.now()
        #: The first outbox id this process gave out (set when the engine loads).
        self.first_id = 1
        #: History rows still to move in the store: (start, end, delta), epoch seconds.
        self.shifts: list[tuple[float, float, float]] = []
        self._moves: list[tuple[int, timedelta]] = []  # (first id on the new scale, delta)

    def check(self, next_id: int) -> ClockStep | None:
        """A step since the last check (logged once), or None.

        ``next_id`` is the engine's next outbox id: events with smaller ids (of
        this process) were stamped before the step.
        """
        if self.watch is None or self.since is None:
            return None
        step = self.watch.check()
        if step is None:
            return None
        self.shifts.append((self.since.timestamp(), step.before.timestamp(), _seconds(step)))
        self.since += step.delta
        self._moves.append((next_id, step.delta))
        before, after = step.before, step.after
        _LOGGER.warning(
            "the system clock was %s: it jumped from %s to %s (%s); readings taken before"
            " are moved by as much",
            "set" if not clock_is_plausible(before) else "stepped",
            before.strftime("%Y-%m-%d %H:%M:%S"),
            after.strftime("%Y-%m-%d %H:%M:%S UTC"),
            describe_step(step.delta),
        )
        return step

    async def shift_history(self, store: History) -> None:
        """Move the store's history rows of the steps seen so far (before new rows go in)."""
        while self.shifts:
            try:
                moved = await store.shift_history(*self.shifts[0])
            except StoreUnavailable:
                return  # logged by the store; the next batch tries again
            _LOGGER.info("moved %d stored reading(s) onto the new clock", moved)
            del self.shifts[0]

    def restamp(self, event_id: int, event: Event) -> Event:
        """An outbox event on the clock's current scale (moved by the steps after it)."""
        if event_id < self.first_id:
            return event  # stored by an earlier run: its clock is not known here
        delta = sum((d for boundary, d in self._moves if event_id < boundary), timedelta(0))
        return move_event(event, delta) if delta else event


def _seconds(step: ClockStep) -> float:
    return step.delta.total_seconds()
