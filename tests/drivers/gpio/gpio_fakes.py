"""Fakes shared by the GPIO driver tests."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock the test moves by hand (for debouncing)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
