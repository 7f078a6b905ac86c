"""Run every benchmark and print one table: ``python bench/run_all.py`` (or ``./dev bench``).

Each benchmark is also a script of its own (``python bench/NAME.py --help``):

* events.py      event latency against a minimal relay and a raw message
* readout.py     readout round trip against a bare XMPP ping
* throughput.py  sustained events/s to 1, 20 and 100 subscribers, loss, vs a bare sender
* fanout.py      100 and 1,000 subscribers through PubSub (Prosody, ejabberd) vs direct events
* footprint.py   resident memory and startup (4 and 204 devices, 1-Wire 100/1,000) vs a bare client
* idle.py        idle CPU and wake-ups with 100 devices
* plot.py        chart cost: Pillow vs matplotlib, 7-day chart time, hubd's RSS around a plot
* soak.py        memory growth over a soak with steady events (10 minutes by default)
* oneshot.py     one `hubctl read` (process start to exit) vs a bare slixmpp connect+ping+disconnect
* remotes.py     readout through a front hub (remotes:) vs directly at the remote hub
* omemo_cost.py  an encrypted chat `read` (OMEMO) vs a plaintext one; RSS, OMEMO on and off

``--quick`` shortens everything (a 60 s soak, fewer rounds) for a smoke run;
``--markdown FILE`` also writes the table as Markdown (for bench/RESULTS.md).
A benchmark that fails becomes a row saying so; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import events
import fanout
import footprint
import idle
import omemo_cost
import oneshot
import plot
import readout
import remotes
import soak
import throughput
from common import Row, markdown_table, print_table

BENCHMARKS = {
    "events": events,
    "readout": readout,
    "throughput": throughput,
    "fanout": fanout,
    "footprint": footprint,
    "idle": idle,
    "plot": plot,
    "soak": soak,
    "oneshot": oneshot,
    "remotes": remotes,
    "omemo": omemo_cost,
}


def machine() -> str:
    """One line about the machine the figures come from."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()} {platform.machine()}, {cpu}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated subset of: " + ", ".join(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--soak-seconds", type=float, help="length of the soak (default 600)")
    parser.add_argument("--markdown", type=Path, help="also write the table here (Markdown)")
    options = parser.parse_args()
    names = options.only.split(",") if options.only else list(BENCHMARKS)
    rows: list[Row] = []
    started = time.monotonic()
    for name in names:
        module = BENCHMARKS[name]
        sub = argparse.ArgumentParser()
        module.add_arguments(sub)
        args = sub.parse_args([])
        if options.quick:
            if name in ("events", "readout", "remotes"):
                args.rounds = 100
            elif name == "footprint":
                args.rounds, args.settle = 1, 3
            elif name in ("idle", "throughput"):
                args.seconds = 30 if name == "idle" else 3
            elif name == "soak":
                args.seconds = 60
            elif name == "plot":
                args.quick = True
            elif name == "oneshot":
                args.rounds = 5
            elif name == "omemo":
                args.rounds = 10
            elif name == "fanout":
                args.seconds, args.drain = 3, 10
                args.steps, args.servers = "direct:1,pubsub:100,pubsub:1000", "prosody"
        if name == "soak" and options.soak_seconds:
            args.seconds = options.soak_seconds
        print(f"== {name}", flush=True)
        try:
            result = module.run(args)
        except Exception as err:
            traceback.print_exc()
            result = [Row(f"{name}: FAILED", f"{type(err).__name__}: {err}"[:120], met=False)]
        print_table(result)
        rows.extend(result)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"hubd benchmarks, {when}, {machine()}; took {time.monotonic() - started:.0f} s"
    print()
    print(header)
    print_table(rows)
    if options.markdown:
        options.markdown.write_text(f"{header}\n\n{markdown_table(rows)}\n")
    return 0 if all(row.met is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
