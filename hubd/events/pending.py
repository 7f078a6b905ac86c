"""What the event engine holds in memory until its next commit, and when that commit is due.

A Pi's SD card wears out with every page written, and SQLite writes whole
pages (4 KiB) for a commit of one small row.  So the engine
(``hubd/events/engine.py``) does not commit per event:

* an event goes out live at once and is written to the outbox only if the
  server has not acknowledged it within :data:`ACK_WAIT` (normally the answer
  takes a round trip, milliseconds): an event delivered live costs no write;
* an event that waits (its subscriber away, the link down, a bounce) is
  committed in the batch that found it waiting, before the engine waits for
  anything else: hubd has promised it, and ``kill -9`` must not lose it (this
  costs writes only while a subscriber is away);
* the readings for the history are committed at most
  ``events.commit_interval`` seconds after they were taken (5 minutes by default);
* the subscriptions' references (the value last reported, for ``changedBy``;
  the time, for ``minInterval``) with a commit at most :data:`REFERENCES_EVERY`
  after they changed: a reference lost costs at most one event sent again
  after a restart, with the current value;
* acknowledgements of events that are in the outbox, and subscriptions a
  failed write left unsaved, within :data:`SOON`;
* everything before the outbox is read (a flush), before the history is read
  (see ``Store.keep_history``), and when hubd stops.

Subscribing and unsubscribing are committed before they are answered.  What
``kill -9`` can cost: the readings of the last ``commit_interval`` (never
ones a historical readout has shown), and the references of the last
:data:`REFERENCES_EVERY` (after the restart a subscription may fire once more
for a value its subscriber already had).  An event sent within the last
:data:`ACK_WAIT` and not acknowledged yet is only in hubd's memory and in the
kernel's socket buffer: the kernel still sends it after the kill, so it is lost
only if the link loses it too.  A power cut costs the same, and such an event
too if the server had not received it yet; nothing committed: every commit is
synced to the card before it returns (``synchronous=FULL``, see
``hubd/events/state_file.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from hubd.events.clock_steps import move_event
from hubd.events.event import Event

#: Seconds a live event may go unacknowledged by the server before it is written
#: to the outbox, so that it survives a restart while the link is silent.
ACK_WAIT = 2.0
#: Seconds within which acknowledgements of stored events are committed.
SOON = 1.0
#: Seconds the subscriptions' references may wait (two pages of a commit for ten
#: subscriptions: half of what a commit of a minute's readings writes).
REFERENCES_EVERY = 600.0
#: Events held in memory that make the commit due at once.
MEMORY_LIMIT = 10_000


@dataclass(slots=True)
class Unstored:
    """An event that is not in the outbox (yet): in flight, or waiting for the commit."""

    event_id: int
    event: Event
    since: float  # loop time it was taken


class PendingWrites:
    """Events not written yet, acknowledgements to write, and when the commit is due."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self.interval = interval
        self.clock = clock
        self.events: dict[int, Unstored] = {}
        #: Acknowledged events that are in the outbox: to delete.
        self.acks: list[int] = []
        # Loop time by which the readings must be written (None: none wait).
        self._due: float | None = None
        # The same for the subscriptions' references.
        self._references_due: float | None = None

    def shift(self, delta: timedelta) -> None:
        """Move the events held here by a step of the wall clock (as the engine's queue)."""
        for unstored in self.events.values():
            unstored.event = move_event(unstored.event, delta)

    def within(self, delay: float) -> None:
        """Commit no later than ``delay`` seconds from now."""
        when = self.clock() + max(delay, 0.0)
        if self._due is None or when < self._due:
            self._due = when

    def due(self, in_flight: set[int]) -> float | None:
        """Loop time of the next commit (None: nothing waits).  An event's own time
        runs from when it was taken: ACK_WAIT while in flight, none once it waits
        (an acknowledgement takes it out, a bounce makes it wait)."""
        due = self._due
        if self._references_due is not None and (due is None or self._references_due < due):
            due = self._references_due
        for unstored in self.events.values():
            wait = ACK_WAIT if unstored.event_id in in_flight else 0.0
            if due is None or unstored.since + wait < due:
                due = unstored.since + wait
        return due

    def holds(self) -> bool:
        """Whether events or acknowledgements wait to be written."""
        return bool(self.events or self.acks)

    def is_due(self, in_flight: set[int]) -> bool:
        due = self.due(in_flight)
        return due is not None and self.clock() >= due

    def references_changed(self) -> None:
        if self._references_due is None:
            self._references_due = self.clock() + min(REFERENCES_EVERY, self.interval * 10)

    def take_references(self, everything: bool) -> bool:
        """Whether this commit writes the references (then they are due no more)."""
        due = self._references_due
        if due is None or not (everything or self.clock() >= due):
            return False
        self._references_due = None
        return True

    def add(self, fresh: Sequence[tuple[int, Event]]) -> None:
        """Fresh events: sent ones wait for their acknowledgement, the others for the commit."""
        now = self.clock()
        for event_id, event in fresh:
            self.events[event_id] = Unstored(event_id, event, now)
        if len(self.events) > MEMORY_LIMIT:
            self.within(0)

    def acknowledged(self, ids: Iterable[int]) -> None:
        """The server has these events: never written, they are done; stored, deleted soon."""
        stored = [i for i in ids if self.events.pop(i, None) is None]
        if stored:
            self.acks.extend(stored)
            self.within(SOON)

    def take(self, in_flight: set[int], everything: bool) -> dict[int, Unstored]:
        """The events to write now: all that are not in flight, and those in flight
        for longer than ACK_WAIT (all of them with ``everything``)."""
        old = self.clock() - ACK_WAIT
        taken = {
            i: u
            for i, u in self.events.items()
            if everything or i not in in_flight or u.since <= old
        }
        for event_id in taken:
            del self.events[event_id]
        self._due = None
        return taken

    def put_back(self, events: dict[int, Unstored], acks: Sequence[int]) -> None:
        """A commit failed: what it held waits for the next one (its wait starts again)."""
        now = self.clock()
        for unstored in events.values():
            unstored.since = now
        self.events = {**events, **self.events}
        self.acks[:0] = acks

    def rearm(self) -> None:
        """After a commit: acknowledgements it could not write are due soon."""
        if self.acks:
            self.within(SOON)

    def unwritable(self, in_flight: set[int]) -> list[tuple[int, Event]]:
        """The events that could be neither written nor sent: taken out, to be counted."""
        lost = [(i, u.event) for i, u in self.events.items() if i not in in_flight]
        for event_id, _ in lost:
            del self.events[event_id]
        return lost

    def forget(self, subscriber: str) -> None:
        """A subscriber unsubscribed: its events are not written."""
        self.events = {i: u for i, u in self.events.items() if u.event.subscriber != subscriber}
