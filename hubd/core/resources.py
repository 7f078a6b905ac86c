"""Shared hardware backends: one pin factory, one BLE scanner, for all devices.

Drivers ask for a backend by key; the first asks creates it, the last device's
stop does not close it (the app closes all at shutdown, in reverse order).
This keeps the core ignorant of which backends exist.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


class SharedResources:
    """A keyed store of backends shared by drivers, closed once at shutdown."""

    def __init__(self) -> None:
        self._items: dict[str, Any] = {}
        self._closers: list[tuple[str, Callable[[], Awaitable[None] | None]]] = []

    def get_or_create(
        self,
        key: str,
        factory: Callable[[], T],
        close: Callable[[T], Awaitable[None] | None] | None = None,
    ) -> T:
        """Return the backend under ``key``, creating it with ``factory`` the first time."""
        if key in self._items:
            item: T = self._items[key]
            return item
        created = factory()
        self._items[key] = created
        if close is not None:
            self._closers.append((key, lambda: close(created)))
        return created

    async def close_all(self) -> None:
        """Close every backend, newest first; a failing close is logged, not raised."""
        while self._closers:
            key, closer = self._closers.pop()
            try:
                result = closer()
                if result is not None:
                    await result
            except Exception:
                _LOGGER.exception("closing %s failed", key)
        self._items.clear()
