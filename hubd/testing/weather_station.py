"""A simulated serial device for the demo: a weather station on a pseudo-terminal.

It behaves like the Arduino sketches people wire to a Pi: every few seconds
it prints one JSON line with its readings, and it answers each line written to
it (the ``send`` field of ``serial.lines``) with ``{"last_command": ...}``.
hubd reads it through the real ``serial.lines`` driver, as it would a USB
serial adapter; only the other end of the cable is simulated.

The station runs on one thread of the demo process (not of hubd), which
owns both ends of the pseudo-terminal for as long as it runs.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import select
import threading
import time
import tty
from collections.abc import Mapping
from pathlib import Path

INTERVAL = 5.0
MAX_COMMAND = 200


class WeatherStation:
    """Prints readings on a pseudo-terminal that ``link`` points at; answers commands."""

    def __init__(self, link: Path, interval: float = INTERVAL) -> None:
        self.link = link
        self.interval = interval
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        link.unlink(missing_ok=True)
        link.symlink_to(os.ttyname(self._slave))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="weather station", daemon=True)
        self._random = random.Random(7)

    def start(self) -> None:
        """Start speaking (a first reading at once)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop, close both ends, remove the link."""
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
        for fd in (self._master, self._slave):
            os.close(fd)
        self.link.unlink(missing_ok=True)

    def reading(self, t: float) -> dict[str, float]:
        """The readings at ``t`` seconds: a slow daily-like swing and a little noise."""
        swing = math.sin(t / 300.0)
        return {
            "temperature": round(18.0 + 4.0 * swing + self._random.uniform(-0.2, 0.2), 1),
            "humidity": round(55.0 - 10.0 * swing + self._random.uniform(-1, 1)),
        }

    def _write(self, payload: Mapping[str, object]) -> None:
        line = json.dumps(payload) + "\n"
        # hubd may not have opened the port yet, or closed it: the next line goes.
        with contextlib.suppress(OSError):
            os.write(self._master, line.encode())

    def _run(self) -> None:
        started = time.monotonic()
        due = started
        pending = b""
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= due:
                self._write(self.reading(now - started))
                due = now + self.interval
            readable, _, _ = select.select([self._master], [], [], min(due - now, 0.5))
            if not readable:
                continue
            try:
                pending += os.read(self._master, 1024)
            except OSError:
                continue
            *lines, pending = pending.split(b"\n")
            pending = pending[-MAX_COMMAND:]
            for raw in lines:
                command = raw.decode(errors="replace").strip()[:MAX_COMMAND]
                if command:
                    self._write({"last_command": command})
