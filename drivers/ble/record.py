"""Record advertisements from a real adapter into a replay file (``hubd ble-record``).

Usage::

    python -m drivers.ble.record [-a hci0] [-d SECONDS] [-n COUNT] [--address MAC ...] [-o FILE]

Writes one JSON line per advertisement, in the format ``ble: {replay: FILE}``
plays back (see :mod:`drivers.ble.advertisement`), to FILE or standard
output.  Stops after ``-d`` seconds, after ``-n`` advertisements, or on
Ctrl-C.  Stop hubd first when it uses the same adapter: BlueZ gives one
discovery per adapter to each process and the two would compete.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .advertisement import Advertisement, encode_line, normalize_address

__all__ = ["main", "record"]

EXIT_OK = 0
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hubd ble-record",
        description="Record Bluetooth LE advertisements as a replay file (JSON Lines).",
    )
    parser.add_argument("-a", "--adapter", default="hci0", help="BlueZ adapter (default hci0)")
    parser.add_argument("-d", "--duration", type=float, help="stop after this many seconds")
    parser.add_argument("-n", "--count", type=int, help="stop after this many advertisements")
    parser.add_argument(
        "--address",
        action="append",
        default=[],
        help="record only this device (repeatable; default: every device)",
    )
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


async def record(
    out: TextIO,
    *,
    adapter: str = "hci0",
    duration: float | None = None,
    count: int | None = None,
    addresses: frozenset[str] = frozenset(),
    started: asyncio.Event | None = None,
) -> int:
    """Scan and write lines to ``out``; return how many were written.

    Raises :class:`~drivers.ble.scanner.BackendUnavailable` when Bluetooth cannot be used.
    """
    from .bleak_scanner import BleakBackend

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    written = 0
    start = loop.time()

    def on_advert(advert: Advertisement) -> None:
        nonlocal written
        if done.is_set() or (addresses and advert.address not in addresses):
            return
        out.write(encode_line(loop.time() - start, advert) + "\n")
        out.flush()
        written += 1
        if count is not None and written >= count:
            done.set()

    backend = BleakBackend(adapter)
    await backend.start(on_advert)
    start = loop.time()
    if started is not None:
        started.set()
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await done.wait()
    finally:
        await backend.stop()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse the arguments, record, report on standard error."""
    from .scan_backend import BackendUnavailable

    args = _parser().parse_args(argv)
    try:
        addresses = frozenset(normalize_address(a) for a in args.address)
    except ValueError as err:
        print(f"hubd ble-record: {err}", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print("hubd ble-record: --duration must be > 0", file=sys.stderr)  # noqa: T201
        return EXIT_USAGE
    output = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
    try:
        print(f"recording on {args.adapter}; Ctrl-C stops", file=sys.stderr)  # noqa: T201
        written = asyncio.run(
            record(
                output,
                adapter=args.adapter,
                duration=args.duration,
                count=args.count,
                addresses=addresses,
            )
        )
    except BackendUnavailable as err:
        print(f"hubd ble-record: Bluetooth LE is unavailable: {err}", file=sys.stderr)  # noqa: T201
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)  # noqa: T201
        return EXIT_OK
    finally:
        if output is not sys.stdout:
            output.close()
    print(f"recorded {written} advertisement(s)", file=sys.stderr)  # noqa: T201
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
