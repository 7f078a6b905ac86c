"""The wall clock of a Pi without a real-time clock: maybe wrong at boot, then stepped.

A Raspberry Pi has no battery-backed clock.  Until NTP (or a person) sets it,
the system clock says whatever the image or ``fake-hwclock`` left: a date
years back (TLS certificates then look "not yet valid"), or the moment of the
last shutdown.  When the clock is set it *steps*: the wall clock jumps while
the monotonic clock, which only counts seconds since boot, goes on.

:class:`ClockWatch` tells a step from the ordinary drift that NTP slews away:
it compares ``wall - monotonic`` at each :meth:`~ClockWatch.check` with the
last one, and a change larger than :data:`STEP_TOLERANCE` is a step.  What to
do about one (readings stamped before it, timers) is the caller's part; see
``hubd/events/clock_steps.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

#: A wall clock earlier than this has certainly not been set: this hubd did not
#: exist yet (the date of its first release, kept well before any build).
CLOCK_FLOOR = datetime(2025, 1, 1, tzinfo=UTC)

#: How far ``wall - monotonic`` may move between two checks before it counts as a
#: step.  NTP slews at most 0.5 ms per second, so two checks an hour apart move
#: less than this; a clock that is set jumps by minutes or years.
STEP_TOLERANCE = 2.0


def clock_is_plausible(now: datetime) -> bool:
    """Whether ``now`` can be a time the clock was set to (not before :data:`CLOCK_FLOOR`)."""
    return now >= CLOCK_FLOOR


def describe_step(delta: timedelta) -> str:
    """``+7 years`` / ``-1 h 0 min`` / ``+42 s``: a step's size for a log line."""
    sign = "+" if delta >= timedelta(0) else "-"
    seconds = round(abs(delta.total_seconds()))
    if seconds >= 2 * 365 * 86400:
        return f"{sign}{seconds / (365.25 * 86400):.1f} years"
    if seconds >= 2 * 86400:
        return f"{sign}{seconds / 86400:.0f} days"
    if seconds >= 3600:
        return f"{sign}{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{sign}{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{sign}{seconds:.0f} s"


@dataclass(frozen=True, slots=True)
class ClockStep:
    """One step of the wall clock, seen by a :class:`ClockWatch`."""

    delta: timedelta  # new wall time minus old wall time (positive: forward)
    before: datetime  # the wall clock just before the step, on the old scale
    after: datetime  # the wall clock when the step was seen, on the new scale

    def moved(self, stamp: datetime) -> datetime:
        """``stamp``, taken on the old scale, put on the new one."""
        return stamp + self.delta


class ClockWatch:
    """Notices steps of the wall clock against the monotonic clock."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tolerance: float = STEP_TOLERANCE,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self.tolerance = tolerance
        self._offset = wall() - monotonic()

    def now(self) -> datetime:
        """The wall clock, aware, in UTC."""
        return datetime.fromtimestamp(self._wall(), UTC)

    def check(self) -> ClockStep | None:
        """The step since the last check, or None (drift within the tolerance is followed)."""
        mono = self._monotonic()
        offset = self._wall() - mono
        moved = offset - self._offset
        previous, self._offset = self._offset, offset
        if abs(moved) <= self.tolerance:
            return None
        return ClockStep(
            delta=timedelta(seconds=moved),
            before=datetime.fromtimestamp(mono + previous, UTC),
            after=datetime.fromtimestamp(mono + offset, UTC),
        )
