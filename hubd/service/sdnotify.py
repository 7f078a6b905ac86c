"""systemd's notify protocol, spoken directly on its socket (no libsystemd needed).

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET``: a datagram socket to
which the service writes newline-separated ``KEY=value`` lines (``READY=1``,
``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``, ``RELOADING=1``).  A name
starting with ``@`` is in the abstract namespace.  With ``WatchdogSec=`` set,
``WATCHDOG_USEC`` tells how often systemd wants to hear ``WATCHDOG=1``
(``WATCHDOG_PID``, when present, names the process it means).

Without ``NOTIFY_SOCKET`` (a terminal, the tests' plain runs) every call is a
no-op.  Sending never blocks the event loop: the socket is non-blocking, and
a datagram that cannot be delivered is dropped with a DEBUG line, since a
lost status line must never take hubd down.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)


def _address(name: str) -> str | bytes:
    """Turn ``NOTIFY_SOCKET`` into a ``sendto`` address (``@`` = abstract namespace)."""
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


class Notifier:
    """Sends notify messages to systemd, or nothing when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        name = env.get("NOTIFY_SOCKET", "")
        # Only a path or an abstract name is a socket we can speak to (vsock is not used here).
        self._address = _address(name) if name.startswith(("/", "@")) else None
        self._socket: socket.socket | None = None
        self._failed = False
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        """True when systemd listens."""
        return self._address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; return True when it was handed to the socket."""
        if self._address is None or not lines:
            return False
        if self._socket is None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)
        # A status line must stay one line: systemd splits the datagram on newlines.
        data = "\n".join(line.replace("\n", " ") for line in lines).encode()
        try:
            self._socket.sendto(data, self._address)
        except OSError as err:
            # Full queue or systemd gone: say so once at DEBUG; the next message may pass.
            if not self._failed:
                _LOGGER.debug("cannot notify systemd: %s", err)
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``, with an optional status line in the same datagram."""
        return self.notify("READY=1", *(() if status is None else (f"STATUS={status}",)))

    def status(self, text: str) -> bool:
        """``STATUS=text``: what ``systemctl status hubd`` shows."""
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the service is alive."""
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """``RELOADING=1``: a reload began (ends with :meth:`ready`)."""
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown began."""
        return self.notify("STOPPING=1", *(() if status is None else (f"STATUS={status}",)))

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between the deadlines systemd's watchdog enforces, or None when it is off."""
    raw = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a wrapper that started us)
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None
