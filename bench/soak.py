"""Memory over a soak: hubd delivering steady events for ``--seconds`` (default 10 minutes).

hubd runs with a ``serial.lines`` device on a pseudo-terminal (lines at
``--rate`` per second, each a new value: each one is an event and a history
row) plus 10 polled thermometers; one subscriber (a raw client) receives
every event.  Resident memory is sampled every ``--every`` seconds; the
growth is measured from the end of the first minute (imports, caches and
SQLite's page cache filling up) to the end, and as a slope over the second
half of the run: a leak grows without end, a cache stops; "no leak" means
under 1 MiB/h over the second half.  Lost events are counted too.

Usage: python bench/soak.py [--seconds 600] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from common import (
    Hubd,
    RawClient,
    Row,
    hub_config,
    load,
    make_server,
    onewire_devices,
    pty_pair,
    rss_mib,
    run_alone,
)

EV = "urn:xmpp:iot:events"


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MiB per second)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return sum((t - mx) * (v - my) for t, v in points) / den if den else 0.0


async def run_async(args: argparse.Namespace, server, work: Path) -> list[Row]:  # type: ignore[no-untyped-def]
    fd = pty_pair(work / "ttyHUB")
    devices = (
        f"  - {{id: probe, driver: serial.lines, port: {work / 'ttyHUB'}, format: json,\n"
        "     fields: {v: {type: numeric}}}\n"
    ) + onewire_devices(work, 10)
    config = hub_config(work, server, devices, extra="events: {queue_limit: 100000}\n")
    hubd = Hubd(work, config)
    client = RawClient(server, "sub0")
    try:
        hubd.wait_ready()
        hubd.wait_connected()
        await client.connect()
        request = f"<subscribe xmlns='{EV}' seqnr='1'><node nodeId='probe'/></subscribe>"
        await client.iq(f"{server.jid('hub')}/hubd", request, "sub")
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        next_sample = start
        sent = 0
        while (now := time.monotonic()) - start < args.seconds:
            due = int((now - start) * args.rate)
            if due > sent:
                os.write(fd, b"".join(b'{"v": %d}\n' % i for i in range(sent, due)))
                sent = due
            if now >= next_sample:
                samples.append((now - start, rss_mib(hubd.pid)))
                next_sample += args.every
            await asyncio.sleep(min(0.02, 1 / args.rate))
        deadline = time.monotonic() + 30
        while len(client.values) < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        samples.append((time.monotonic() - start, rss_mib(hubd.pid)))
        lost = sent - len(client.values & set(range(sent)))
    finally:
        await client.close()
        hubd.stop()
        os.close(fd)
    warm = [v for t, v in samples if t >= min(60.0, args.seconds / 2)]
    base = warm[0] if warm else samples[0][1]
    end = samples[-1][1]
    half = [(t, v) for t, v in samples if t >= samples[-1][0] / 2]
    per_hour = slope(half) * 3600
    grew = end - base
    return [
        Row(
            f"memory over a {args.seconds:g} s soak, {args.rate:g} events/s "
            f"({sent} events, lost {lost}; load {load()})",
            f"{samples[0][1]:.1f} -> {base:.1f} (1 min) -> {end:.1f} MiB",
            "",
            f"{grew:+.2f} MiB after 1 min, {per_hour:+.2f} MiB/h (2nd half)",
            "no leak (2nd half < 1 MiB/h), lost 0",
            per_hour < 1.0 and lost == 0,
        )
    ]


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["sub0"])
        with server:
            return asyncio.run(run_async(args, server, work))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=600, help="length of the soak")
    parser.add_argument("--rate", type=float, default=50, help="events per second")
    parser.add_argument("--every", type=float, default=5, help="seconds between RSS samples")


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
