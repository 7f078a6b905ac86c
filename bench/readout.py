"""Readout round trip against a bare XMPP ping, between the same two clients, in one run.

Starts a throwaway Prosody on loopback and ``hubd run`` (simulated GPIO), then
from a plain slixmpp client measures, alternately:

* ping: an XEP-0199 ping IQ to the hub and its result (the floor: one round trip);
* readout: an XEP-0323 momentary ``req`` of one node until its ``fields`` message
  with ``done='true'`` (accepted IQ result + one message).

Prints median and p95 of each and their ratio.  Usage: ``python bench/readout.py [-n 300]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import slixmpp
from common import Row, load, run_alone
from defusedxml.ElementTree import fromstring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody import ProsodyServer

SD = "urn:xmpp:iot:sensordata"


async def connect(server: ProsodyServer, user: str, password: str) -> slixmpp.ClientXMPP:
    client = slixmpp.ClientXMPP(f"{server.jid(user)}/bench", password)
    client.ca_certs = server.ca_file
    client.enable_direct_tls = False
    client.register_plugin("xep_0199")
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _e: started.set_result(None))
    client.connect(server.host, server.port)
    await asyncio.wait_for(started, 10)
    return client


async def wait_hub(client: slixmpp.ClientXMPP, hub: str) -> None:
    for _ in range(200):
        try:
            await client.plugin["xep_0199"].send_ping(slixmpp.JID(hub), timeout=1)
            return
        except Exception:  # not connected yet
            await asyncio.sleep(0.05)
    raise RuntimeError("hubd did not come online")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def measure(server: ProsodyServer, rounds: int) -> dict[str, list[float]]:
    client = await connect(server, "client", "clientpass")
    hub = f"{server.jid('hub')}/hubd"
    await wait_hub(client, hub)
    done: dict[str, asyncio.Future[None]] = {}

    def on_message(message: Any) -> None:
        for child in message.xml:
            if child.tag == f"{{{SD}}}fields" and child.get("done") == "true":
                future = done.pop(child.get("seqnr"), None)
                if future is not None and not future.done():
                    future.set_result(None)

    client.register_handler(Callback("bench", MatchXPath("{jabber:client}message"), on_message))
    samples: dict[str, list[float]] = {"ping": [], "readout": []}
    for seqnr in range(rounds + 20):
        start = time.perf_counter()
        await client.plugin["xep_0199"].send_ping(slixmpp.JID(hub), timeout=10)
        ping = time.perf_counter() - start

        future = asyncio.get_running_loop().create_future()
        done[str(seqnr)] = future
        iq = client.make_iq_get(ito=slixmpp.JID(hub))
        iq.xml.append(
            fromstring(
                f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'><node nodeId='lamp'/></req>"
            )
        )
        start = time.perf_counter()
        await iq.send(timeout=10)
        await asyncio.wait_for(future, 10)
        readout = time.perf_counter() - start
        if seqnr >= 20:  # warm-up rounds are not counted
            samples["ping"].append(ping)
            samples["readout"].append(readout)
    await client.disconnect()
    return samples


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=300)


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = ProsodyServer(workdir / "prosody")
        server.register("hub", "hubpass")
        server.register("client", "clientpass")
        (workdir / "pw").write_text("hubpass\n")
        config = workdir / "config.yaml"
        config.write_text(
            textwrap.dedent(
                f"""\
                xmpp: {{jid: {server.jid("hub")}, password_file: pw, server: {server.host},
                       port: {server.port}, ca_file: {server.ca_file}}}
                access: {{readers: [{server.jid("client")}]}}
                limits: {{requests_per_minute: 60000, burst: 10000}}
                state_dir: state
                log_level: warning
                gpio: {{pin_factory: mock}}
                devices:
                  - {{id: lamp, driver: gpio.output, pin: 17}}
                """
            )
        )
        with server:
            hubd = subprocess.Popen(
                [sys.executable, "-m", "hubd", "run", "-c", str(config)],
                env={**os.environ, "HUBD_LOOP": "asyncio"},  # as on a Pi without uvloop
            )
            try:
                samples = asyncio.run(measure(server, args.rounds))
            finally:
                hubd.terminate()
                hubd.wait(10)
    ping, readout = samples["ping"], samples["readout"]
    print(f"readout round trip vs XMPP ping, {len(ping)} rounds, loopback Prosody")
    print(f"{'':10}{'median ms':>12}{'p95 ms':>12}")
    for name, values in samples.items():
        median, p95 = statistics.median(values) * 1e3, percentile(values, 0.95) * 1e3
        print(f"{name:10}{median:12.3f}{p95:12.3f}")
    ratio = statistics.median(readout) / statistics.median(ping)
    ratio95 = percentile(readout, 0.95) / percentile(ping, 0.95)
    print(f"ratio readout/ping: median {ratio:.2f}x, p95 {ratio95:.2f}x (target <= 2x)")
    med_r, p95_r = statistics.median(readout) * 1e3, percentile(readout, 0.95) * 1e3
    med_p, p95_p = statistics.median(ping) * 1e3, percentile(ping, 0.95) * 1e3
    return [
        Row(
            f"readout round trip, median of {len(ping)} (load {load()})",
            f"{med_r:.3f} ms (p95 {p95_r:.3f})",
            f"ping {med_p:.3f} ms (p95 {p95_p:.3f})",
            f"{ratio:.2f}x (p95 {ratio95:.2f}x)",
            "<= 2x ping",
            ratio <= 2.0,
        )
    ]


if __name__ == "__main__":
    raise SystemExit(main())
