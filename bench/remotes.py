"""Readout round trip through a front hub (``remotes:``) against the same directly at the remote.

Starts a throwaway Prosody on loopback and two ``hubd run`` (simulated GPIO):
the garage hub with one output, and the house hub listing the garage in its
``remotes:``.  From one plain slixmpp client it measures, alternately, in the
same run:

* direct: an XEP-0323 momentary ``req`` of ``lamp`` at the garage hub until its
  ``fields`` message with ``done='true'``;
* through: the same ``req`` naming ``<node nodeId='lamp' sourceId='garage'/>``
  at the house hub, which asks the garage and passes its values on;
* hop: an XEP-0199 ping to the house hub (one more round trip through the server).

Goal (issue 18): through <= 1.5 x direct + one hop.  Event latency across hubs
is not measured: events on remote nodes are not forwarded yet.
Usage: ``python bench/remotes.py [-n 300]``.
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
from common import Row, load, run_alone, wait_log
from defusedxml.ElementTree import fromstring
from readout import connect, percentile, wait_hub
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody import ProsodyServer

SD = "urn:xmpp:iot:sensordata"


async def measure(server: ProsodyServer, rounds: int) -> dict[str, list[float]]:
    client = await connect(server, "client", "clientpass")
    house, garage = f"{server.jid('hub')}/hubd", f"{server.jid('garage')}/hubd"
    await wait_hub(client, house)
    await wait_hub(client, garage)
    done: dict[str, asyncio.Future[None]] = {}

    def on_message(message: Any) -> None:
        for child in message.xml:
            if child.tag == f"{{{SD}}}fields" and child.get("done") == "true":
                future = done.pop(child.get("seqnr"), None)
                if future is not None and not future.done():
                    future.set_result(None)

    client.register_handler(Callback("bench", MatchXPath("{jabber:client}message"), on_message))

    async def readout(to: str, seqnr: int, source: str) -> float:
        future = asyncio.get_running_loop().create_future()
        done[str(seqnr)] = future
        iq = client.make_iq_get(ito=slixmpp.JID(to))
        iq.xml.append(
            fromstring(
                f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'>"
                f"<node nodeId='lamp'{source}/></req>"
            )
        )
        start = time.perf_counter()
        await iq.send(timeout=10)
        await asyncio.wait_for(future, 10)
        return time.perf_counter() - start

    samples: dict[str, list[float]] = {"direct": [], "through": [], "hop": []}
    for index in range(rounds + 20):
        direct = await readout(garage, 2 * index, "")
        through = await readout(house, 2 * index + 1, " sourceId='garage'")
        start = time.perf_counter()
        await client.plugin["xep_0199"].send_ping(slixmpp.JID(house), timeout=10)
        hop = time.perf_counter() - start
        if index >= 20:  # warm-up rounds are not counted
            samples["direct"].append(direct)
            samples["through"].append(through)
            samples["hop"].append(hop)
    await client.disconnect()
    return samples


def _config(work: Path, server: ProsodyServer, user: str, access: str, extra: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    (work / "pw").write_text(f"{user}pass\n")
    config = work / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid(user)}/hubd, password_file: pw, server: {server.host},
                   port: {server.port}, ca_file: {server.ca_file}}}
            access: {access}
            limits: {{requests_per_minute: 60000, burst: 10000}}
            state_dir: state
            log_level: info
            gpio: {{pin_factory: mock}}
            """
        )
        + extra
    )
    return config


def _spawn(work: Path, config: Path) -> subprocess.Popen[bytes]:
    log = (work / "hubd.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "hubd", "run", "-c", str(config)],
        cwd=work,
        env={**os.environ, "HUBD_LOOP": "asyncio"},  # as on a Pi without uvloop
        stdout=log,
        stderr=log,
    )


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=300)


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = ProsodyServer(workdir / "prosody")
        for user in ("hub", "garage", "client"):
            server.register(user, f"{user}pass")
        client, house_bare = server.jid("client"), server.jid("hub")
        garage_config = _config(
            workdir / "garage",
            server,
            "garage",
            f"{{readers: [{client}, {house_bare}]}}",
            "devices:\n  - {id: lamp, driver: gpio.output, pin: 17}\n",
        )
        house_config = _config(
            workdir / "house",
            server,
            "hub",
            f"{{readers: [{client}]}}",
            f"remotes:\n  - {{id: garage, jid: {server.jid('garage')}/hubd}}\n"
            "devices:\n  - {id: porch, driver: gpio.output, pin: 18}\n",
        )
        with server:
            garage = _spawn(workdir / "garage", garage_config)
            house = None
            try:
                wait_log(workdir / "garage" / "hubd.log", "connected to ")
                house = _spawn(workdir / "house", house_config)
                wait_log(workdir / "house" / "hubd.log", "remote garage")
                wait_log(workdir / "house" / "hubd.log", "online: 1 node(s)")
                samples = asyncio.run(measure(server, args.rounds))
            finally:
                for proc in (house, garage):
                    if proc is not None:
                        proc.terminate()
                        proc.wait(10)
    print(f"readout through a front hub vs directly at the remote, {args.rounds} rounds")
    print(f"{'':10}{'median ms':>12}{'p95 ms':>12}")
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values) * 1e3
        print(f"{name:10}{medians[name]:12.3f}{percentile(values, 0.95) * 1e3:12.3f}")
    bound = 1.5 * medians["direct"] + medians["hop"]
    ratio = medians["through"] / medians["direct"]
    print(f"through/direct {ratio:.2f}x; goal through <= 1.5 x direct + hop = {bound:.3f} ms")
    p95 = percentile(samples["through"], 0.95) * 1e3
    return [
        Row(
            f"readout through a front hub, median of {len(samples['direct'])} (load {load()})",
            f"{medians['through']:.3f} ms (p95 {p95:.3f})",
            f"direct at the remote {medians['direct']:.3f} ms; hop {medians['hop']:.3f} ms",
            f"{ratio:.2f}x direct",
            "<= 1.5x direct + 1 hop",
            medians["through"] <= bound,
        )
    ]


if __name__ == "__main__":
    raise SystemExit(main())
