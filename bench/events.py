"""Event latency against the practical limit, on two hub configurations, in one run.

One throwaway Prosody on loopback and two ``hubd run`` processes:

* **single**: one ``serial.lines`` device on a pseudo-terminal and one contact,
  the subscriber (subscribed to the whole node);
* **realistic**, as a user would configure it: four devices on three buses
  (``gpio.output``, ``gpio.input``, ``gpio.pwm`` on mock pins and a
  ``serial.lines`` JSON device on a pseudo-terminal), three other accounts
  online with approved presence subscriptions to the hub, the subscriber's
  subscription on one field with ``changedBy``, and no bench-only settings
  (default limits, queue limit, log level and event loop).

The subscriber is a stock slixmpp client as an independent program would
be one (service discovery, XEP-0198 stream management, ping; online with
presence, the hub in its roster with an approved subscription both ways).
Measured: the time from a line written into a hub's pty to the event message
at the subscriber, against

* a minimal relay (bench/minimal_relay.py: a bare slixmpp program that reads
  the same kind of line from its own pty and sends it as a message to the same
  subscriber), and
* a raw client-to-client message over the same server,

in interleaved rounds (single hub, relay, realistic hub, raw), so that the
ratios compare figures taken under the same load.  The target (<= 1.3x the
relay) applies to the realistic configuration.  Throughput is measured by
bench/throughput.py.

Usage: python bench/events.py [-n 300] [--gap 0.02] [--loop asyncio|default|uvloop]
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import slixmpp
from common import Hubd, Row, load, pty_pair, run_alone
from defusedxml.ElementTree import fromstring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.testing.prosody import ProsodyServer

SD = "urn:xmpp:iot:sensordata"
EV = "urn:xmpp:iot:events"
WARMUP = 20
CONTACTS = 3
#: What a stock slixmpp client program typically registers.
STOCK_PLUGINS = ("xep_0030", "xep_0198", "xep_0199")


class Client(slixmpp.ClientXMPP):
    """A stock slixmpp client that timestamps every message it gets."""

    def __init__(self, jid: str, password: str, ca: Path) -> None:
        super().__init__(jid, password)
        self.ca_certs = ca
        self.enable_direct_tls = False
        for plugin in STOCK_PLUGINS:
            self.register_plugin(plugin)
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.register_handler(Callback("all", MatchXPath("{jabber:client}message"), self._on))

    def _on(self, message: Any) -> None:
        now = time.perf_counter()
        key = _key(message)
        waiter = None if key is None else self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def start(self, server: ProsodyServer) -> None:
        started = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _e: started.set_result(None))
        self.connect(server.host, server.port)
        await asyncio.wait_for(started, 10)
        await self.get_roster(timeout=10)
        self.send_presence()

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[key] = future
        return future

    async def befriend(self, jid: str) -> None:
        """Add ``jid`` to the roster with a presence subscription; wait until approved."""
        self.send_presence(pto=jid, ptype="subscribe")
        await until(lambda: self.client_roster[jid]["subscription"] in ("to", "both"), jid)


async def until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


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


def single_config(work: Path, server: ProsodyServer) -> Path:
    """One serial device; the settings this bench has always used."""
    return _config(
        work,
        server,
        "hub",
        """\
        limits: {requests_per_minute: 60000, burst: 10000}
        log_level: info
        events: {queue_limit: 100000}
        """,
        """\
          - {{id: probe, driver: serial.lines, port: {tty}, format: json,
             fields: {{v: {{type: numeric}}}}}}
        """.format(tty=work / "tty"),
    )


def realistic_config(work: Path, server: ProsodyServer) -> Path:
    """Four devices on three buses, every setting at its default."""
    return _config(
        work,
        server,
        "home",
        """\
        gpio: {pin_factory: mock}
        """,
        """\
          - {{id: gate, driver: gpio.output, pin: 17, active_high: false}}
          - {{id: door, driver: gpio.input, pin: 27, pull_up: true, bounce_time: 0.05}}
          - {{id: dimmer, driver: gpio.pwm, pin: 18, frequency: 200, initial: 0.25}}
          - {{id: probe, driver: serial.lines, port: {tty}, format: json,
             fields: {{v: {{type: numeric, unit: "°C"}}}}}}
        """.format(tty=work / "tty"),
    )


def _config(work: Path, server: ProsodyServer, user: str, extra: str, devices: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    (work / "pw").write_text(f"{user}pass\n")
    config = work / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid(user)}, password_file: pw, server: {server.host},
                   port: {server.port}, ca_file: {server.ca_file}}}
            access: {{readers: ["*@{server.domain}"]}}
            state_dir: state
            """
        )
        + textwrap.dedent(extra)
        + "devices:\n"
        + textwrap.dedent(devices)
    )
    return config


async def subscribe(client: Client, hub: str, seqnr: int, request: str) -> None:
    iq = client.make_iq_get(ito=slixmpp.JID(hub))
    iq.xml.append(fromstring(f"<subscribe xmlns='{EV}' seqnr='{seqnr}'>{request}</subscribe>"))
    await iq.send(timeout=10)


async def run_async(args: argparse.Namespace, server: ProsodyServer, work: Path) -> list[Row]:
    for name in ("single", "realistic", "relay"):
        (work / name).mkdir()
    ptys = {name: pty_pair(work / name / "tty") for name in ("single", "realistic", "relay")}
    loop = {"default": None, "asyncio": "asyncio", "uvloop": "uvloop"}[args.loop]
    hubs = {
        "single": Hubd(work / "single", single_config(work / "single", server), loop or ""),
        "realistic": Hubd(
            work / "realistic", realistic_config(work / "realistic", server), loop or ""
        ),
    }
    relay = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("minimal_relay.py")),
            f"{server.jid('relay')}/relay",
            "relaypass",
            server.host,
            str(server.port),
            str(server.ca_file),
            str(work / "relay" / "tty"),
            f"{server.jid('sub')}/bench",
        ],
        stdout=subprocess.PIPE,
    )
    clients: list[Client] = []
    try:
        for hub in hubs.values():
            await asyncio.to_thread(hub.wait_connected)
        assert relay.stdout is not None
        await asyncio.to_thread(relay.stdout.readline)  # "ready"
        for name in ("sub", "sender", *(f"contact{i}" for i in range(CONTACTS))):
            client = Client(f"{server.jid(name)}/bench", "pass", server.ca_file)
            await client.start(server)
            clients.append(client)
        sub, sender, contacts = clients[0], clients[1], clients[2:]
        for contact in contacts:
            await contact.befriend(server.jid("home"))
        for index, name in enumerate(("hub", "home"), start=1):
            await sub.befriend(server.jid(name))
            request = "<node nodeId='probe'/>"
            if name == "home":
                request += "<field name='v' changedBy='0.5'/>"
            await subscribe(sub, f"{server.jid(name)}/hubd", index, request)
            # The hub asks for the subscriber's presence in turn (approved by slixmpp).
            await until(
                lambda n=name: sub.client_roster[server.jid(n)]["subscription"] == "both",
                f"{name} following the subscriber",
            )

        async def one(write: Callable[[str], object], key: str) -> float:
            waiter = sub.expect(key)
            start = time.perf_counter()
            write(key)
            return await asyncio.wait_for(waiter, 10) - start

        def line(name: str) -> Callable[[str], object]:
            return lambda key: os.write(ptys[name], f'{{"v": {key}}}\n'.encode())

        def raw(key: str) -> None:
            sender.send_message(mto=sub.boundjid, mbody=key, mtype="normal")

        rounds = {
            "hubd single": line("single"),
            "minimal relay": line("relay"),
            "hubd realistic": line("realistic"),
            "raw message": raw,
        }
        lat: dict[str, list[float]] = {name: [] for name in rounds}
        for i in range(args.rounds + WARMUP):
            for name, write in rounds.items():
                if args.gap:
                    await asyncio.sleep(args.gap)
                took = await one(write, str(i))
                if i >= WARMUP:
                    lat[name].append(took)
        return report(args, lat)
    except BaseException:
        for name, hub in hubs.items():
            kept = Path(tempfile.gettempdir()) / f"bench-events-{name}.log"
            kept.write_bytes((hub.work / "hubd.log").read_bytes())
            print(f"hubd's log ({name}): {kept}", file=sys.stderr)
        raise
    finally:
        for client in clients:
            client.disconnect()
        for hub in hubs.values():
            hub.stop()
        relay.terminate()
        relay.wait(10)


def report(args: argparse.Namespace, lat: dict[str, list[float]]) -> list[Row]:
    print(f"event latency, {args.rounds} interleaved rounds, loopback Prosody, loop {args.loop}")
    print(f"{'':16}{'median ms':>11}{'p95 ms':>10}")
    figures = {name: stats(samples) for name, samples in lat.items()}
    for name, (median, p95) in figures.items():
        print(f"{name:16}{median:11.3f}{p95:10.3f}")
    r, m = figures["minimal relay"], figures["raw message"]
    rows = []
    for name, label in (("hubd realistic", "realistic config"), ("hubd single", "one device")):
        h = figures[name]
        ratio = h[0] / r[0]
        print(f"ratio {name}/relay: median {ratio:.2f}x, p95 {h[1] / r[1]:.2f}x")
        rows.append(
            Row(
                f"event latency, {label}, median of {args.rounds} (load {load()})",
                f"{h[0]:.3f} ms (p95 {h[1]:.3f})",
                f"minimal relay {r[0]:.3f} ms (p95 {r[1]:.3f})",
                f"{ratio:.2f}x (p95 {h[1] / r[1]:.2f}x)",
                "<= 1.3x relay" if name == "hubd realistic" else "",
                ratio <= 1.3 if name == "hubd realistic" else None,
            )
        )
    h = figures["hubd realistic"]
    rows.append(
        Row(
            "event latency (realistic) vs a raw client-to-client message",
            "",
            f"raw message {m[0]:.3f} ms",
            f"{h[0] / m[0]:.2f}x",
        )
    )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=300)
    parser.add_argument(
        "--gap", type=float, default=0.02, help="seconds between two lines (default 0.02)"
    )
    parser.add_argument(
        "--loop",
        choices=("default", "asyncio", "uvloop"),
        default="asyncio",
        help="hubd's event loop (HUBD_LOOP): asyncio as on a Pi (default), or what is installed",
    )


def run(args: argparse.Namespace) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = ProsodyServer(work / "prosody")
        server.register("hub", "hubpass")
        server.register("home", "homepass")
        server.register("relay", "relaypass")
        for name in ("sub", "sender", *(f"contact{i}" for i in range(CONTACTS))):
            server.register(name, "pass")
        with server:
            return asyncio.run(run_async(args, server, work))


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
