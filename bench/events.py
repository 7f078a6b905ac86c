"""Event latency and throughput, against the practical limits measured in the same run.

One throwaway Prosody on loopback; hubd (``hubd run``) with a ``serial.lines``
device on a pseudo-terminal; subscribers on other accounts.  Measured:

1. latency, a line written into the pty → the event message at the subscriber, against
   * a minimal relay (bench/minimal_relay.py: a bare slixmpp program that reads the same
     kind of line from its own pty and sends it as a message), and
   * a raw client-to-client message over the same server;
2. throughput: lines at a fixed rate to N subscribers; events/s delivered and lost.

Usage: python bench/events.py [-n 300] [--throughput [--subscribers 20] [--rate 1000]]

The throughput part here uses slixmpp subscribers in this one process, which
caps it at what they can parse; bench/throughput.py measures throughput with
lightweight receivers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from common import Row, load, print_table, pty_pair
from defusedxml.ElementTree import fromstring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody import ProsodyServer

SD = "urn:xmpp:iot:sensordata"
EV = "urn:xmpp:iot:events"


class Client(slixmpp.ClientXMPP):
    """A subscriber that timestamps every message it gets."""

    def __init__(self, jid: str, password: str, ca: Path) -> None:
        super().__init__(jid, password)
        self.ca_certs = ca
        self.enable_direct_tls = False
        self.arrivals: dict[str, float] = {}
        self.count = 0
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.register_handler(Callback("all", MatchXPath("{jabber:client}message"), self._on))

    def _on(self, message: Any) -> None:
        now = time.perf_counter()
        key = _key(message)
        if key is None:
            return
        self.count += 1
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def start(self, server: ProsodyServer) -> None:
        started = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _e: started.set_result(None))
        self.connect(server.host, server.port)
        await asyncio.wait_for(started, 10)
        self.send_presence()

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[key] = future
        return future


def _key(message: Any) -> str | None:
    body = message["body"]
    if body:
        try:
            return str(json.loads(body)["v"])
        except (ValueError, KeyError, TypeError):
            return body
    field = message.xml.find(f".//{{{SD}}}numeric[@name='v']")
    return None if field is None else field.get("value")


def stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


async def wait_log(path: Path, needle: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while needle not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {needle!r} in {path}")
        await asyncio.sleep(0.05)


async def run_async(args: argparse.Namespace, server: ProsodyServer, work: Path) -> list[Row]:
    hub_pty = pty_pair(work / "ttyHUB")
    relay_pty = pty_pair(work / "ttyRELAY")
    (work / "pw").write_text("hubpass\n")
    subs = [f"sub{i}" for i in range(args.subscribers)]
    config = work / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid("hub")}, password_file: pw, server: {server.host},
                   port: {server.port}, ca_file: {server.ca_file}}}
            access: {{readers: ["*@{server.domain}"]}}
            limits: {{requests_per_minute: 60000, burst: 10000}}
            state_dir: state
            log_level: info
            events: {{queue_limit: 100000}}
            devices:
              - {{id: probe, driver: serial.lines, port: {work / "ttyHUB"}, format: json,
                 fields: {{v: {{type: numeric}}}}}}
            """
        )
    )
    log = (work / "hubd.log").open("wb")
    # The plain asyncio loop, like the relay (and a Pi without the uvloop extra).
    hubd = subprocess.Popen(
        [sys.executable, "-m", "hubd", "run", "-c", str(config)],
        stdout=log,
        stderr=log,
        env={**os.environ, "HUBD_LOOP": "asyncio"},
    )
    relay = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("minimal_relay.py")),
            f"{server.jid('relay')}/relay",
            "relaypass",
            server.host,
            str(server.port),
            str(server.ca_file),
            str(work / "ttyRELAY"),
            f"{server.jid('sub0')}/bench",
        ],
        stdout=subprocess.PIPE,
    )
    clients: list[Client] = []
    try:
        await wait_log(work / "hubd.log", "connected to ")
        await wait_log(work / "hubd.log", "node probe is online")
        assert relay.stdout is not None
        await asyncio.to_thread(relay.stdout.readline)  # "ready"
        for name in subs:
            client = Client(f"{server.jid(name)}/bench", "pass", server.ca_file)
            await client.start(server)
            clients.append(client)
        sender = Client(f"{server.jid('sender')}/bench", "pass", server.ca_file)
        await sender.start(server)
        hub = f"{server.jid('hub')}/hubd"

        async def subscribe(index: int, client: Client) -> None:
            iq = client.make_iq_get(ito=slixmpp.JID(hub))
            request = f"<subscribe xmlns='{EV}' seqnr='{index + 1}'><node nodeId='probe'/>"
            iq.xml.append(fromstring(request + "</subscribe>"))
            await iq.send(timeout=10)

        # Latency with one subscriber, like the relay: one message per line.
        first = clients[0]
        await subscribe(0, first)
        lat: dict[str, list[float]] = {"hubd event": [], "minimal relay": [], "raw message": []}
        for i in range(args.rounds + 20):
            key = str(i)
            waiter = first.expect(key)
            start = time.perf_counter()
            os.write(hub_pty, f'{{"v": {key}}}\n'.encode())
            hubd_t = await asyncio.wait_for(waiter, 10) - start
            waiter = first.expect(key)
            start = time.perf_counter()
            os.write(relay_pty, f'{{"v": {key}}}\n'.encode())
            relay_t = await asyncio.wait_for(waiter, 10) - start
            waiter = first.expect(key)
            start = time.perf_counter()
            sender.send_message(mto=first.boundjid, mbody=key, mtype="normal")
            raw_t = await asyncio.wait_for(waiter, 10) - start
            if i >= 20:
                lat["hubd event"].append(hubd_t)
                lat["minimal relay"].append(relay_t)
                lat["raw message"].append(raw_t)
        print(f"event latency, {args.rounds} rounds, loopback Prosody")
        print(f"{'':16}{'median ms':>11}{'p95 ms':>10}")
        for name, samples in lat.items():
            median, p95 = stats(samples)
            print(f"{name:16}{median:11.3f}{p95:10.3f}")
        h, r, m = (stats(lat[k]) for k in ("hubd event", "minimal relay", "raw message"))
        print(
            f"ratio hubd/relay: median {h[0] / r[0]:.2f}x, p95 {h[1] / r[1]:.2f}x (target <= 1.3x)"
        )
        print(f"ratio hubd/raw:   median {h[0] / m[0]:.2f}x, p95 {h[1] / m[1]:.2f}x")
        rows = [
            Row(
                f"event latency, median of {args.rounds} (load {load()})",
                f"{h[0]:.3f} ms (p95 {h[1]:.3f})",
                f"minimal relay {r[0]:.3f} ms (p95 {r[1]:.3f})",
                f"{h[0] / r[0]:.2f}x (p95 {h[1] / r[1]:.2f}x)",
                "<= 1.3x relay",
                h[0] / r[0] <= 1.3,
            ),
            Row(
                "event latency vs a raw client-to-client message",
                "",
                f"raw message {m[0]:.3f} ms",
                f"{h[0] / m[0]:.2f}x",
            ),
        ]
        if not args.throughput:
            return rows
        # Throughput: lines at a fixed rate, every subscriber gets every event.
        for index, client in enumerate(clients[1:], start=1):
            await subscribe(index, client)
        for client in clients:
            client.count = 0
        total = int(args.rate * args.seconds)
        start = time.perf_counter()
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            os.write(hub_pty, f'{{"v": {100000 + i}}}\n'.encode())
        sent_in = time.perf_counter() - start
        expected = total * len(clients)
        deadline = time.perf_counter() + 60
        while sum(c.count for c in clients) < expected and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        took = time.perf_counter() - start
        got = sum(c.count for c in clients)
        print(
            f"throughput: {total} lines in {sent_in:.2f} s ({total / sent_in:.0f}/s) to "
            f"{len(clients)} subscribers: {got}/{expected} events in {took:.2f} s "
            f"({got / took:.0f} events/s), lost {expected - got}"
        )
        return rows
    except BaseException:
        kept = Path(tempfile.gettempdir()) / "bench-events-hubd.log"
        kept.write_bytes((work / "hubd.log").read_bytes())
        print(f"hubd's log: {kept}", file=sys.stderr)
        raise
    finally:
        for client in clients:
            client.disconnect()
        hubd.terminate()
        relay.terminate()
        hubd.wait(10)
        relay.wait(10)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--rounds", type=int, default=300)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="also the old throughput check with slixmpp subscribers (see throughput.py)",
    )
    print_table(run(parser.parse_args()))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=300)
    parser.set_defaults(subscribers=1, rate=1000, seconds=3, throughput=False)


def run(args: argparse.Namespace) -> list[Row]:
    if not args.throughput:
        args.subscribers = 1  # latency needs one
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = ProsodyServer(work / "prosody")
        server.register("hub", "hubpass")
        server.register("relay", "relaypass")
        server.register("sender", "pass")
        for i in range(args.subscribers):
            server.register(f"sub{i}", "pass")
        with server:
            return asyncio.run(run_async(args, server, work))


if __name__ == "__main__":
    raise SystemExit(main())
