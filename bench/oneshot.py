"""One-shot ``hubctl read`` against a bare slixmpp connect-ping-disconnect, same server, same run.

Starts a throwaway Prosody on loopback and ``hubd run`` (one simulated GPIO
output), then, alternately, times from process start to exit:

* baseline: ``bench/bare_ping.py``, a bare slixmpp process: connect (TLS,
  SASL, bind), one XEP-0199 ping to the server, disconnect;
* hubctl: ``hubctl read HUB lamp state``: the same login, an XEP-0323
  readout of one field (IQ result + fields message), the printed line, the
  same disconnect.

Both are fresh interpreters, so both pay Python's start and slixmpp's import:
the figure is what a shell loop or cron job pays per call.  Prints medians,
p95s and the ratio of the medians (target: at most 1.5x).
Usage: ``python bench/oneshot.py [-n 20]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, Hubd, Row, hub_config, load, make_server, run_alone

from hubd.testing.prosody import ProsodyServer

HUBCTL = str(Path(sys.executable).with_name("hubctl"))
TARGET = 1.5


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def timed(args: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit of one process, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {done.returncode}: {done.stderr.strip()}")
    return elapsed


def measure(server: ProsodyServer, rounds: int) -> dict[str, list[float]]:
    user = server.jid("client")
    env = {
        **os.environ,
        "HUBCTL_JID": user,
        "HUBCTL_PASSWORD": "pass",
        "HUBCTL_SERVER": server.host,
        "HUBCTL_PORT": str(server.port),
        "HUBCTL_CA_FILE": str(server.ca_file),
    }
    bare = [
        sys.executable,
        str(BENCH / "bare_ping.py"),
        user,
        "pass",
        server.host,
        str(server.port),
        str(server.ca_file),
    ]
    hubctl = [HUBCTL, "read", server.jid("hub"), "lamp", "state"]
    samples: dict[str, list[float]] = {"baseline": [], "hubctl": []}
    for index in range(rounds + 2):
        # Alternate, so that a busy moment of the shared machine hits both alike.
        pair = (("baseline", bare), ("hubctl", hubctl))
        for name, args in pair if index % 2 == 0 else reversed(pair):
            elapsed = timed(args, env)
            if index >= 2:  # warm-up: the page cache, Prosody's first logins
                samples[name].append(elapsed)
    return samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=20)


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["client"])
        devices = "  - {id: lamp, driver: gpio.output, pin: 17}\n"
        config = hub_config(work, server, devices, extra="gpio: {pin_factory: mock}\n")
        with server:
            hubd = Hubd(work, config)
            try:
                hubd.wait_connected()
                samples = measure(server, args.rounds)
            finally:
                hubd.stop()
    base, tool = samples["baseline"], samples["hubctl"]
    ratio = statistics.median(tool) / statistics.median(base)
    ratio95 = percentile(tool, 0.95) / percentile(base, 0.95)
    print(f"one-shot process, spawn to exit, {len(base)} rounds each, loopback Prosody")
    print(f"{'':10}{'median ms':>12}{'p95 ms':>12}")
    for name, values in samples.items():
        print(
            f"{name:10}{statistics.median(values) * 1e3:12.1f}"
            f"{percentile(values, 0.95) * 1e3:12.1f}"
        )
    print(f"ratio hubctl/baseline: median {ratio:.2f}x, p95 {ratio95:.2f}x (target <= {TARGET}x)")
    return [
        Row(
            f"hubctl read of one field, spawn to exit, median of {len(tool)} (load {load()})",
            f"{statistics.median(tool) * 1e3:.0f} ms (p95 {percentile(tool, 0.95) * 1e3:.0f})",
            f"bare slixmpp connect+ping+disconnect {statistics.median(base) * 1e3:.0f} ms"
            f" (p95 {percentile(base, 0.95) * 1e3:.0f})",
            f"{ratio:.2f}x (p95 {ratio95:.2f}x)",
            f"<= {TARGET}x",
            ratio <= TARGET,
        )
    ]


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
