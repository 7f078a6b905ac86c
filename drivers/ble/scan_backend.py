"""What a scan backend is: the interface the radio (bleak) and a recording (replay) implement.

:class:`~drivers.ble.scanner.SharedScanner` runs on one backend and knows only
this interface; the backends know only this module, never the scanner, so the
scanner can pick one at run time (and import bleak only when it picks the
radio) without the modules importing each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Protocol

from hubd.errors import DriverUnavailable

from .advertisement import Advertisement

_LOGGER = logging.getLogger(__name__)

AdvertCallback = Callable[[Advertisement], None]

STOP_TIMEOUT: Final = 5.0


class BackendUnavailable(DriverUnavailable):
    """The backend cannot scan; the message says why in a few words."""


class ScanBackend(Protocol):
    """A source of advertisements: the radio (bleak) or a recording (replay)."""

    label: str
    """What it scans with, for logs: ``hci0``, ``replay of demo.jsonl``."""

    async def start(self, deliver: AdvertCallback) -> None:
        """Start delivering advertisements (on the loop thread); raise BackendUnavailable."""

    async def stop(self) -> None:
        """Stop delivering; idempotent."""


async def cancel_and_wait(task: asyncio.Task[None] | None, timeout: float = STOP_TIMEOUT) -> None:  # noqa: ASYNC109
    """Cancel a task we own and wait (bounded) for its end; our own cancellation propagates."""
    if task is None or task.done():
        return
    task.cancel()
    # asyncio.wait never raises the task's CancelledError into us, but does
    # raise if *we* are cancelled while waiting: exactly the semantics wanted.
    await asyncio.wait({task}, timeout=timeout)
    if task.done() and not task.cancelled() and task.exception() is not None:
        _LOGGER.error("task %s failed", task.get_name(), exc_info=task.exception())
