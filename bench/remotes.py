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

Then event latency, in the same run: the client subscribes to ``lamp`` both
directly at the garage and at the house (``sourceId='garage'``, which
subscribes at the garage as itself); each round it switches the lamp with an
XEP-0325 ``set`` at the garage and times both events of that one change from
the ``set``'s send.

The three readout kinds run in a shuffled (seeded) order in each round, each
after a 5 ms rest, so that none always follows another at a hub still busy
with it; 30 warm-up rounds are left out; the goal compares medians of the same
run.

Goal (issue 18): through <= 1.5 x direct + one hop, for both.
Usage: ``python bench/remotes.py [-n 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
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
EV = "urn:xmpp:iot:events"
CTRL = "urn:xmpp:iot:control"
#: The event subscriptions' seqnrs: apart from the readouts' (even, odd below 2 x rounds).
DIRECT_EVENTS, THROUGH_EVENTS = 10**6, 10**6 + 1
#: Rounds not counted at the start, and the rest before each measurement (seconds).
WARM_UP = 30
REST = 0.005


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

    async def hop() -> float:
        start = time.perf_counter()
        await client.plugin["xep_0199"].send_ping(slixmpp.JID(house), timeout=10)
        return time.perf_counter() - start

    # Each round takes the three in a shuffled order (seeded: the same order every run),
    # with a short rest before each: a fixed order put the readout through the house
    # right behind the direct one, at a garage still finishing it (its audit and log
    # lines, the answer's send), which charged the garage's tail to the front hub.
    order = random.Random(18)
    samples: dict[str, list[float]] = {"direct": [], "through": [], "hop": []}
    for index in range(rounds + WARM_UP):
        kinds = ["direct", "through", "hop"]
        order.shuffle(kinds)
        taken: dict[str, float] = {}
        for kind in kinds:
            await asyncio.sleep(REST)
            if kind == "direct":
                taken[kind] = await readout(garage, 2 * index, "")
            elif kind == "through":
                taken[kind] = await readout(house, 2 * index + 1, " sourceId='garage'")
            else:
                taken[kind] = await hop()
        if index >= WARM_UP:  # warm-up rounds (cold paths, first allocations) are not counted
            for kind, value in taken.items():
                samples[kind].append(value)
    samples.update(await measure_events(client, house, garage, rounds))
    await client.disconnect()
    return samples


async def measure_events(
    client: slixmpp.ClientXMPP, house: str, garage: str, rounds: int
) -> dict[str, list[float]]:
    """Both events of each switch of the lamp: directly from the garage, through the house."""
    arrived: dict[str, asyncio.Queue[float]] = {
        str(DIRECT_EVENTS): asyncio.Queue(),
        str(THROUGH_EVENTS): asyncio.Queue(),
    }

    def on_event(message: Any) -> None:
        for child in message.xml:
            queue = arrived.get(child.get("seqnr", "")) if child.tag == f"{{{SD}}}fields" else None
            if queue is not None:
                queue.put_nowait(time.perf_counter())

    client.register_handler(Callback("events", MatchXPath("{jabber:client}message"), on_event))
    for to, seqnr, source in (
        (garage, DIRECT_EVENTS, ""),
        (house, THROUGH_EVENTS, " sourceId='garage'"),
    ):
        iq = client.make_iq_get(ito=slixmpp.JID(to))
        iq.xml.append(
            fromstring(
                f"<subscribe xmlns='{EV}' seqnr='{seqnr}'><node nodeId='lamp'{source}/>"
                "<field name='state'/></subscribe>"
            )
        )
        await iq.send(timeout=10)
    samples: dict[str, list[float]] = {"event direct": [], "event through": []}
    for index in range(rounds + 20):
        iq = client.make_iq_set(ito=slixmpp.JID(garage))
        value = "true" if index % 2 == 0 else "false"
        iq.xml.append(
            fromstring(
                f"<set xmlns='{CTRL}'><node nodeId='lamp'/>"
                f"<boolean name='state' value='{value}'/></set>"
            )
        )
        start = time.perf_counter()
        await iq.send(timeout=10)
        direct = await asyncio.wait_for(arrived[str(DIRECT_EVENTS)].get(), 10)
        through = await asyncio.wait_for(arrived[str(THROUGH_EVENTS)].get(), 10)
        if index >= 20:
            samples["event direct"].append(direct - start)
            samples["event through"].append(through - start)
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
    parser.add_argument("-n", "--rounds", type=int, default=500)


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
            f"{{controllers: [{client}], readers: [{house_bare}]}}",
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
    print(f"through a front hub vs directly at the remote, {args.rounds} rounds")
    print(f"{'':14}{'median ms':>12}{'p95 ms':>12}")
    medians = {}
    for name, values in samples.items():
        medians[name] = statistics.median(values) * 1e3
        print(f"{name:14}{medians[name]:12.3f}{percentile(values, 0.95) * 1e3:12.3f}")
    bound = 1.5 * medians["direct"] + medians["hop"]
    ratio = medians["through"] / medians["direct"]
    print(f"through/direct {ratio:.2f}x; goal through <= 1.5 x direct + hop = {bound:.3f} ms")
    p95 = percentile(samples["through"], 0.95) * 1e3
    ev_bound = 1.5 * medians["event direct"] + medians["hop"]
    ev_ratio = medians["event through"] / medians["event direct"]
    print(f"event through/direct {ev_ratio:.2f}x; goal <= 1.5 x direct + hop = {ev_bound:.3f} ms")
    ev_p95 = percentile(samples["event through"], 0.95) * 1e3
    return [
        Row(
            f"readout through a front hub, median of {len(samples['direct'])} (load {load()})",
            f"{medians['through']:.3f} ms (p95 {p95:.3f})",
            f"direct at the remote {medians['direct']:.3f} ms; hop {medians['hop']:.3f} ms",
            f"{ratio:.2f}x direct",
            "<= 1.5x direct + 1 hop",
            medians["through"] <= bound,
        ),
        Row(
            f"event through a front hub, median of {len(samples['event direct'])} (load {load()})",
            f"{medians['event through']:.3f} ms (p95 {ev_p95:.3f})",
            f"direct from the remote {medians['event direct']:.3f} ms; hop {medians['hop']:.3f} ms",
            f"{ev_ratio:.2f}x direct",
            "<= 1.5x direct + 1 hop",
            medians["event through"] <= ev_bound,
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
