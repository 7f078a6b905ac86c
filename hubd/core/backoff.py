"""Exponential backoff with jitter: retries that never form a tight loop.

Used for reconnecting to the XMPP server and for restarting a driver whose
hardware went away.  The jitter ("equal jitter": half fixed, half random)
keeps a houseful of hubs from hammering a server in step after an outage.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays of base, 2·base, 4·base ... up to ``cap``, each with jitter."""

    __slots__ = ("_rng", "attempts", "base", "cap")  # one per device

    def __init__(
        self, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None
    ) -> None:
        if base <= 0 or cap < base:
            raise ValueError("need 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Return the next delay in seconds and count the attempt."""
        ceiling = min(self.cap, self.base * float(2 ** min(self.attempts, 32)))
        self.attempts += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from ``base`` after a success."""
        self.attempts = 0
