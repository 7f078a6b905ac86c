"""Idle CPU and wake-ups per second of hubd with 100 devices, against a bare slixmpp client.

hubd runs connected with 100 DS18B20 thermometers (``gpio.onewire`` on a
fake sysfs tree, polled every ``--poll`` seconds: the kernel's w1 files offer
no notification, so a read per interval is the floor); nothing subscribes.
After ``--settle`` seconds, both processes are watched for ``--seconds``:
CPU time (utime + stime of all threads, in % of one core) and wake-ups
(voluntary context switches of all threads) per second.

Usage: python bench/idle.py [--seconds 60] [--poll 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from common import (
    BareClient,
    Hubd,
    Row,
    cpu_seconds,
    hub_config,
    load,
    make_server,
    onewire_devices,
    run_alone,
    wakeups,
)


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["bare"])
        with server:
            config = hub_config(work, server, onewire_devices(work, 100, poll=args.poll))
            hubd = Hubd(work, config)
            bare = BareClient(server, "bare")
            try:
                hubd.wait_ready()
                hubd.wait_connected()
                if bare.readline() != "ready":
                    raise RuntimeError("bare client did not connect")
                time.sleep(args.settle)
                pids = {"hubd": hubd.pid, "bare": bare.pid}
                cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
                wake0 = {k: wakeups(p) for k, p in pids.items()}
                start = time.monotonic()
                time.sleep(args.seconds)
                took = time.monotonic() - start
                cpu = {k: (cpu_seconds(p) - cpu0[k]) / took * 100 for k, p in pids.items()}
                wake = {k: (wakeups(p) - wake0[k]) / took for k, p in pids.items()}
            finally:
                bare.stop()
                hubd.stop()
    where = f"100 devices polled every {args.poll:g} s, {args.seconds:g} s (load {load()})"
    return [
        Row(
            f"idle CPU, {where}",
            f"{cpu['hubd']:.2f} %",
            f"bare client {cpu['bare']:.2f} %",
            "",
            "< 0.5 %",
            cpu["hubd"] < 0.5,
        ),
        Row(
            "idle wake-ups per second (same run)",
            f"{wake['hubd']:.1f}/s",
            f"bare client {wake['bare']:.1f}/s",
            f"{wake['hubd'] / wake['bare']:.1f}x" if wake["bare"] else "",
        ),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60, help="measuring window")
    parser.add_argument("--settle", type=float, default=5, help="seconds before measuring")
    parser.add_argument("--poll", type=float, default=30, help="the devices' poll_interval")


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
