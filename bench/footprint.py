"""Startup time to READY and resident memory, with 10, 100 and 1,000 devices.

For each count: a fresh state directory, ``hubd run`` spawned with a notify
socket (as systemd does); the time from spawn to ``READY=1`` (every driver
had its first start attempt, the first XMPP connection under way), then to
``STATUS=connected...``; resident memory (VmRSS) at READY and after
``--settle`` seconds connected.  The devices are DS18B20 thermometers
(``gpio.onewire``) on a fake sysfs tree, the driver that scales to any count.

Baseline, in the same run: a bare slixmpp client process (bench/bare_client.py)
connected to the same server: its resident memory, and its time from spawn to
a started session.

Usage: python bench/footprint.py [--devices 10,100,1000] [--settle 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from common import BareClient, Hubd, Row, hub_config, load, make_server, onewire_devices, rss_mib
from common import print_table as show


def bare_baseline(server: object, rounds: int) -> tuple[float, float]:
    """Median (seconds to session, RSS MiB) of a bare slixmpp client."""
    times, sizes = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        client = BareClient(server, "bare")  # type: ignore[arg-type]
        try:
            if client.readline() != "ready":
                raise RuntimeError("bare client did not connect")
            times.append(time.perf_counter() - started)
            time.sleep(1)
            sizes.append(rss_mib(client.pid))
        finally:
            client.stop()
    return statistics.median(times), statistics.median(sizes)


def run(args: argparse.Namespace) -> list[Row]:
    counts = [int(n) for n in str(args.devices).split(",")]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["bare"])
        with server:
            bare_time, bare_rss = bare_baseline(server, args.rounds)
            for count in counts:
                ready, connected, rss_ready, rss_steady = measure(
                    work, server, count, args, "asyncio"
                )
                t_ready = statistics.median(ready)
                t_conn = statistics.median(connected)
                rows.append(
                    Row(
                        f"startup to READY, {count} devices (load {load()})",
                        f"{t_ready:.2f} s (connected {t_conn:.2f} s)",
                        f"bare client session {bare_time:.2f} s",
                        f"{t_conn / bare_time:.2f}x connected",
                        "<= 1 s at 100" if count == 100 else "",
                        t_ready <= 1.0 if count == 100 else None,
                    )
                )
                steady = statistics.median(rss_steady)
                rows.append(
                    Row(
                        f"resident memory, {count} devices (load {load()})",
                        f"{steady:.1f} MiB (at READY {statistics.median(rss_ready):.1f})",
                        f"bare client {bare_rss:.1f} MiB",
                        f"{steady / bare_rss:.2f}x",
                        "<= 1.5x at 100" if count == 100 else "",
                        steady <= 1.5 * bare_rss if count == 100 else None,
                    )
                )
            if args.uvloop and 100 in counts:
                steady = statistics.median(measure(work, server, 100, args, "uvloop")[3])
                rows.append(
                    Row(
                        f"resident memory, 100 devices, uvloop installed (load {load()})",
                        f"{steady:.1f} MiB",
                        f"bare client {bare_rss:.1f} MiB",
                        f"{steady / bare_rss:.2f}x",
                    )
                )
    return rows


def measure(
    work: Path, server: object, count: int, args: argparse.Namespace, loop: str
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Seconds to READY and to connected, MiB at READY and settled, one per round."""
    ready, connected, rss_ready, rss_steady = [], [], [], []
    for _ in range(args.rounds):
        case = work / f"hub{count}"
        shutil.rmtree(case, ignore_errors=True)
        case.mkdir()
        config = hub_config(case, server, onewire_devices(case, count))  # type: ignore[arg-type]
        hubd = Hubd(case, config, loop=loop)
        try:
            ready.append(hubd.wait_ready())
            rss_ready.append(rss_mib(hubd.pid))
            connected.append(hubd.wait_connected())
            time.sleep(args.settle)
            rss_steady.append(rss_mib(hubd.pid))
        finally:
            hubd.stop()
    return ready, connected, rss_ready, rss_steady


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", default="10,100,1000", help="device counts")
    parser.add_argument("--settle", type=float, default=5, help="seconds connected before RSS")
    parser.add_argument("--rounds", type=int, default=3, help="runs per count (median)")
    parser.add_argument(
        "--no-uvloop", dest="uvloop", action="store_false", help="skip the uvloop row"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    show(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
