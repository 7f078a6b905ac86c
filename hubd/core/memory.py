"""A node's small memory across restarts (an output's last state, a counter).

Drivers keep a little JSON each, under ``state_dir/nodes/<id>.json``: written
whole to a temporary file, synced and renamed over the old one, so a power cut
leaves either the old or the new content, never half of one.  Files are read
and written off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

_LOGGER = logging.getLogger(__name__)


class NodeMemory(Protocol):
    """What a driver may remember between runs of hubd."""

    async def load(self) -> dict[str, Any]:
        """What was saved last, or ``{}``."""

    async def save(self, data: dict[str, Any]) -> None:
        """Remember ``data`` (JSON-able), replacing what was saved."""


class VolatileMemory:
    """Memory that lasts as long as the process (tests, and no state_dir)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def load(self) -> dict[str, Any]:
        """What was saved last."""
        return dict(self.data)

    async def save(self, data: dict[str, Any]) -> None:
        """Keep ``data``."""
        self.data = dict(data)


class FileMemory:
    """Memory in one JSON file, replaced atomically."""

    __slots__ = ("path",)  # one per device

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> dict[str, Any]:
        """The file's content; ``{}`` when it is missing or unreadable (said once)."""
        return await asyncio.to_thread(self._load)

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            _LOGGER.warning("ignoring unreadable %s: %s", self.path, err)
            return {}
        return data if isinstance(data, dict) else {}

    async def save(self, data: dict[str, Any]) -> None:
        """Write ``data``: temporary file, fsync, rename."""
        await asyncio.to_thread(self._save, json.dumps(data))

    def _save(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
