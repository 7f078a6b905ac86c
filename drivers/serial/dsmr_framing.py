"""Cut a P1 byte stream into DSMR telegrams, and decode them as they complete.

``TelegramBuffer`` finds each telegram (``/`` through ``!CRC\\r\\n``) in a byte
stream, dropping (and counting) whatever lies between them, with a bounded
buffer; ``DsmrDecoder`` chains it with :func:`~drivers.serial.dsmr_protocol.parse_telegram`
and counts rejected telegrams by reason.  Pure: bytes in, no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Final

from drivers.serial.dsmr_protocol import (
    MAX_TELEGRAM_BYTES,
    DsmrParseError,
    Telegram,
    parse_telegram,
)

__all__ = ["DsmrDecoder", "TelegramBuffer"]


# '!', up to four CRC digits, CRLF. '!' only ever starts the last line of a telegram.
_END: Final = re.compile(rb"\n![0-9A-Fa-f]{0,4}\r\n")
_END_MAX: Final = len(b"\n!FFFF\r\n")


class TelegramBuffer:
    """Cut a byte stream into telegrams (``/`` through ``!CRC\\r\\n``), as raw bytes.

    Bytes outside telegrams (noise, the tail of a telegram joined half-way, a telegram whose
    end line was corrupted) are dropped and counted in ``discarded_bytes``. A telegram longer
    than ``max_size`` is dropped whole and counted in ``overflows``; the buffer never holds
    more than ``max_size`` bytes between calls.
    """

    def __init__(self, max_size: int = MAX_TELEGRAM_BYTES) -> None:
        if max_size < _END_MAX:
            raise ValueError(f"max_size must be at least {_END_MAX}")
        self.max_size = max_size
        self.discarded_bytes = 0
        self.overflows = 0
        self._buffer = bytearray()
        self._scan_from = 0  # the end marker cannot lie before this: it was searched already

    def __len__(self) -> int:
        """Return the number of bytes held, waiting for the rest of a telegram."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the telegrams they completed, oldest first."""
        self._buffer += data
        frames: list[bytes] = []
        while (end := _END.search(self._buffer, self._scan_from)) is not None:
            # The last '/' before the end: a later start means the earlier telegram was cut
            # off (the meter restarted, bytes were lost) and only the later one is whole.
            start = self._buffer.rfind(b"/", 0, end.start())
            if start >= 0:
                frames.append(bytes(self._buffer[start : end.end()]))
                self._discard(start)
                del self._buffer[: end.end() - start]
            else:
                self._discard(end.end())
            self._scan_from = 0
        start = self._buffer.rfind(b"/")
        self._discard(len(self._buffer) if start < 0 else start)
        if len(self._buffer) > self.max_size:
            self.overflows += 1
            self._discard(len(self._buffer))
        self._scan_from = max(0, len(self._buffer) - _END_MAX + 1)
        return frames

    def clear(self) -> None:
        """Drop a partly received telegram (after the port was reopened, say)."""
        self._discard(len(self._buffer))

    def _discard(self, count: int) -> None:
        if count:
            self.discarded_bytes += count
            del self._buffer[:count]


class DsmrDecoder:
    """Bytes in, parsed telegrams out: a ``TelegramBuffer`` and ``parse_telegram`` together.

    ``errors`` counts rejected telegrams by ``DsmrParseError.reason``; ``telegrams`` counts
    the good ones. The buffer's own counters are on ``buffer``.
    """

    def __init__(
        self,
        *,
        max_size: int = MAX_TELEGRAM_BYTES,
        standard_offset: timedelta = timedelta(hours=1),
    ) -> None:
        if abs(standard_offset) >= timedelta(hours=23):
            raise ValueError("standard_offset must be less than 23 hours")
        self.buffer = TelegramBuffer(max_size)
        self.standard_offset = standard_offset
        self.telegrams = 0
        self.errors: Counter[str] = Counter()
        self.last_error: DsmrParseError | None = None

    def feed(self, data: bytes) -> list[Telegram]:
        """Add received bytes; return the intact telegrams they completed."""
        parsed: list[Telegram] = []
        for frame in self.buffer.feed(data):
            try:
                parsed.append(parse_telegram(frame, standard_offset=self.standard_offset))
            except DsmrParseError as exc:
                self.errors[exc.reason] += 1
                self.last_error = exc
            else:
                self.telegrams += 1
        return parsed
