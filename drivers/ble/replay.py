"""The replay backend: recorded advertisements played back with their timing.

``ble: {replay: FILE}`` makes every BLE driver listen to a JSON Lines file
(:mod:`drivers.ble.advertisement` has the format) instead of the radio: the
demo runs on it, and so do the end-to-end tests.  The whole file is checked
when playback starts, and a bad line is reported as ``FILE:LINE: what is
wrong``.  Line ``t`` plays ``t / speed`` seconds after playback started; with
``loop`` the file starts again one second (divided by speed) after its last
line.  Blank lines and lines starting with ``#`` are ignored.

This module never imports bleak.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Final

from .advertisement import Advertisement, ReplayFormatError, decode_line
from .scan_backend import AdvertCallback, BackendUnavailable, cancel_and_wait

__all__ = ["LOOP_GAP", "ReplayBackend", "read_replay_file"]

_LOGGER = logging.getLogger(__name__)

LOOP_GAP: Final = 1.0
"""Seconds (at speed 1) between the last line of a pass and the first of the next."""


def read_replay_file(path: Path) -> list[tuple[float, Advertisement]]:
    """Read and check a whole replay file; raise ReplayFormatError as ``FILE:LINE: message``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ReplayFormatError(f"{path}: cannot read the replay file: {err}") from None
    entries: list[tuple[float, Advertisement]] = []
    previous = 0.0
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            t, advert = decode_line(stripped)
        except ReplayFormatError as err:
            raise ReplayFormatError(f"{path}:{number}: {err}") from None
        if t < previous:
            raise ReplayFormatError(
                f"{path}:{number}: t: {t:g} is earlier than the line before ({previous:g}); "
                "lines must be in time order"
            )
        previous = t
        entries.append((t, advert))
    if not entries:
        raise ReplayFormatError(f"{path}: no advertisements in the replay file")
    return entries


class ReplayBackend:
    """Plays a replay file as if its advertisements were being received now."""

    def __init__(self, path: Path, *, speed: float = 1.0, loop: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.path = path
        self.speed = speed
        self.loop = loop
        self.label = f"replay of {path}"
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()
        """Set when a playback without ``loop`` has delivered its last line."""

    async def start(self, deliver: AdvertCallback) -> None:
        """Check the file, then play it in a task of our own."""
        try:
            entries = await asyncio.to_thread(read_replay_file, self.path)
        except ReplayFormatError as err:
            raise BackendUnavailable(str(err)) from err
        self.finished.clear()
        self._task = asyncio.create_task(self._play(entries, deliver), name=self.label)

    async def stop(self) -> None:
        """Stop playing."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _play(
        self, entries: list[tuple[float, Advertisement]], deliver: AdvertCallback
    ) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        period = entries[-1][0] + LOOP_GAP
        passes = 0
        while True:
            for t, advert in entries:
                delay = start + t / self.speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                deliver(advert)
            passes += 1
            if not self.loop:
                _LOGGER.info("%s: played %d advertisement(s), done", self.label, len(entries))
                self.finished.set()
                return
            start += period / self.speed
            _LOGGER.debug("%s: pass %d done, looping", self.label, passes)
