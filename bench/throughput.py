"""Sustained events per second to 1, 20 and 100 subscribers, and what was lost.

One throwaway Prosody on loopback; ``hubd run`` with a ``serial.lines``
device on a pseudo-terminal; a writer thread puts lines into the pty at a
fixed rate (one line at a time, as a device would); the subscribers are
lightweight raw XMPP clients (bench/common.py ``RawClient``) so that the
receiving side is not the bottleneck.  For each count of subscribers: lines
at ``--rate`` for ``--seconds``, then up to ``--drain`` seconds for the rest
to arrive.  Reported: events/s offered and delivered per subscriber, stanza
deliveries/s in all, loss (events never received), and the lag of the last
event after the last line.

Baseline: the ceiling of a bare slixmpp process sending messages to the same
receivers as fast as it can (bench/bare_client.py ``--send``), in stanzas/s.

Usage: python bench/throughput.py [--subscribers 1,20,100] [--rate 1000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
from pathlib import Path

from common import (
    Hubd,
    RawClient,
    Row,
    hub_config,
    load,
    make_server,
    pty_pair,
    run_alone,
)

EV = "urn:xmpp:iot:events"


def pace(fd: int, first: int, count: int, rate: float, done: list[float]) -> None:
    """Write ``count`` JSON lines at ``rate`` per second (catching up when late)."""
    start = time.perf_counter()
    sent = 0
    while sent < count:
        due = int((time.perf_counter() - start) * rate) + 1
        due = min(due, count)
        if due > sent:
            os.write(fd, b"".join(b'{"v": %d}\n' % (first + i) for i in range(sent, due)))
            sent = due
        else:
            time.sleep(max(0.0, (sent + 1) / rate - (time.perf_counter() - start)))
    done.append(time.perf_counter() - start)


async def run_async(args: argparse.Namespace, server, work: Path) -> list[Row]:  # type: ignore[no-untyped-def]
    hub_pty = pty_pair(work / "ttyHUB")
    devices = (
        f"  - {{id: probe, driver: serial.lines, port: {work / 'ttyHUB'}, format: json,\n"
        "     fields: {v: {type: numeric}}}\n"
    )
    config = hub_config(work, server, devices, extra="events: {queue_limit: 1000000}\n")
    hubd = Hubd(work, config)
    clients: list[RawClient] = []
    rows: list[Row] = []
    try:
        hubd.wait_ready()
        hubd.wait_connected()
        hub = f"{server.jid('hub')}/hubd"
        counts = [int(n) for n in args.subscribers.split(",")]
        for index in range(max(counts)):
            client = RawClient(server, f"sub{index}")
            await client.connect()
            clients.append(client)
        # Baseline first: the most a bare slixmpp process sends, to 20 receivers.
        base_n = min(20, len(clients))
        stanzas = await bare_ceiling(server, clients[:base_n], args.baseline_messages, work)
        rows.append(
            Row(
                f"bare slixmpp sender ceiling, to {base_n} receivers (load {load()})",
                "",
                f"{stanzas:.0f} stanzas/s",
            )
        )
        subscribed = 0
        first = 0
        for count in counts:
            for index in range(subscribed, count):
                await subscribe(clients[index], hub, index + 1)
            subscribed = count
            group = clients[:count]
            for client in group:
                client.values.clear()
            total = int(args.rate * args.seconds)
            done: list[float] = []
            start = time.perf_counter()
            writer = threading.Thread(
                target=pace, args=(hub_pty, first, total, args.rate, done), daemon=True
            )
            writer.start()
            wanted = set(range(first, first + total))
            last_arrival = start
            deadline = start + args.seconds + args.drain
            seen = 0
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
                # Cheap while it runs (a late event of the step before may count); exact below.
                arrived = sum(len(c.values) for c in group)
                if arrived > seen:
                    seen, last_arrival = arrived, time.perf_counter()
                if not writer.is_alive() and arrived >= len(group) * total:
                    break
            writer.join(5)
            wrote = done[0] if done else float("nan")
            got = [len(c.values & wanted) for c in group]
            lost = sum(total - g for g in got)
            took = last_arrival - start
            lag = took - wrote
            per_sub = min(got) / took
            sustained = lost == 0 and lag < 1.0
            rows.append(
                Row(
                    f"events to {count} subscriber(s), {args.rate:g}/s offered for "
                    f"{args.seconds:g} s (load {load()})",
                    f"{per_sub:.0f} ev/s each, {sum(got) / took:.0f} deliveries/s, "
                    f"lost {lost}, lag {lag:.2f} s",
                    f"{stanzas:.0f} stanzas/s" if count > 1 else "",
                    f"{sum(got) / took / stanzas:.2f}x" if count > 1 else "",
                    "zero loss at 1000/s" if count == 20 else "",
                    (lost == 0 and sustained and args.rate >= 1000) if count == 20 else None,
                )
            )
            first += total
            await asyncio.sleep(1)
    finally:
        for client in clients:
            await client.close()
        hubd.stop()
        os.close(hub_pty)
    return rows


async def subscribe(client: RawClient, hub: str, seqnr: int) -> None:
    request = f"<subscribe xmlns='{EV}' seqnr='{seqnr}'><node nodeId='probe'/></subscribe>"
    await client.iq(hub, request, f"sub{seqnr}")


async def bare_ceiling(server, receivers: list[RawClient], total: int, work: Path) -> float:  # type: ignore[no-untyped-def]
    """Stanzas/s a bare slixmpp process delivers to ``receivers`` as fast as it can."""
    import subprocess
    import sys

    from common import BENCH

    proc = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "bare_client.py"),
            f"{server.jid('sender')}/bare",
            "pass",
            server.host,
            str(server.port),
            str(server.ca_file),
            "--send",
            str(total),
            ",".join(r.jid for r in receivers),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        if line.strip() != "ready":
            raise RuntimeError(f"bare sender: {line!r}")
        for r in receivers:
            r.bodies.clear()
        start = time.perf_counter()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        per = {i: set(range(i, total, len(receivers))) for i in range(len(receivers))}
        deadline = start + 120
        last = start
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
            got = sum(len(r.bodies & per[i]) for i, r in enumerate(receivers))
            if got:
                last = time.perf_counter()
            if got >= total:
                break
        return got / (last - start)
    finally:
        proc.terminate()
        proc.wait(10)


def run(args: argparse.Namespace) -> list[Row]:
    counts = [int(n) for n in args.subscribers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, [*(f"sub{i}" for i in range(max(counts))), "sender"])
        with server:
            return asyncio.run(run_async(args, server, work))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--subscribers", default="1,20,100", help="counts, comma-separated")
    parser.add_argument("--rate", type=float, default=1000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=5, help="seconds of lines per step")
    parser.add_argument("--drain", type=float, default=30, help="seconds allowed to catch up")
    parser.add_argument("--baseline-messages", type=int, default=20000)


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
