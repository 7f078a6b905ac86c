"""GPIO edge to subscriber event: a mock pin edge inside hubd → the event message at a client.

hubd runs in this process (its App, the same code as ``hubd run``) so the
benchmark can drive gpiozero's MockFactory pin; the subscriber is a separate
slixmpp client on a throwaway Prosody.  Baseline in the same run: a raw
client-to-client message over the same server.

Usage: python bench/gpio_edge.py [-n 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import slixmpp
from defusedxml.ElementTree import fromstring
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.core.config import load_config
from hubd.service.app import App
from hubd.testing.prosody import ProsodyServer

SD = "urn:xmpp:iot:sensordata"
EV = "urn:xmpp:iot:events"


class Subscriber(slixmpp.ClientXMPP):
    def __init__(self, jid: str, ca: Path) -> None:
        super().__init__(jid, "pass")
        self.ca_certs = ca
        self.enable_direct_tls = False
        self.waiter: asyncio.Future[float] | None = None
        self.register_handler(Callback("all", MatchXPath("{jabber:client}message"), self._on))

    def _on(self, message: Any) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(time.perf_counter())

    async def start(self, server: ProsodyServer) -> None:
        started = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", lambda _e: started.set_result(None))
        self.connect(server.host, server.port)
        await asyncio.wait_for(started, 10)
        self.send_presence()

    def expect(self) -> asyncio.Future[float]:
        self.waiter = asyncio.get_running_loop().create_future()
        return self.waiter


async def run(server: ProsodyServer, work: Path, rounds: int) -> None:
    (work / "pw").write_text("hubpass\n")
    config_file = work / "config.yaml"
    config_file.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid("hub")}, password_file: pw, server: {server.host},
                   port: {server.port}, ca_file: {server.ca_file}}}
            access: {{readers: ["*@{server.domain}"]}}
            state_dir: state
            log_level: warning
            gpio: {{pin_factory: mock}}
            devices:
              - {{id: door, driver: gpio.input, pin: 27}}
            """
        )
    )
    app = App(load_config(config_file))
    hubd = asyncio.create_task(app.run())
    subscriber = Subscriber(f"{server.jid('sub')}/bench", server.ca_file)
    sender = Subscriber(f"{server.jid('sender')}/bench", server.ca_file)
    try:
        await subscriber.start(server)
        await sender.start(server)
        hub = slixmpp.JID(f"{server.jid('hub')}/hubd")
        for _ in range(100):  # until the hub is online
            try:
                await subscriber.plugin["xep_0030"].get_info(jid=hub, timeout=1)
                break
            except Exception:
                await asyncio.sleep(0.05)
        iq = subscriber.make_iq_get(ito=hub)
        iq.xml.append(
            fromstring(f"<subscribe xmlns='{EV}' seqnr='1'><node nodeId='door'/></subscribe>")
        )
        await iq.send(timeout=10)
        pin = app.resources.get_or_create("gpio.pin_factory", lambda: None).pin(27)
        edge: list[float] = []
        raw: list[float] = []
        for i in range(rounds + 20):
            waiter = subscriber.expect()
            start = time.perf_counter()
            if i % 2:
                pin.drive_low()
            else:
                pin.drive_high()
            edge_t = await asyncio.wait_for(waiter, 10) - start
            waiter = subscriber.expect()
            start = time.perf_counter()
            sender.send_message(mto=subscriber.boundjid, mbody="x", mtype="normal")
            raw_t = await asyncio.wait_for(waiter, 10) - start
            if i >= 20:
                edge.append(edge_t)
                raw.append(raw_t)
        print(f"GPIO edge to event, {rounds} rounds, loopback Prosody")
        print(f"{'':20}{'median ms':>11}{'p95 ms':>10}")
        for name, samples in (("mock edge → event", edge), ("raw message", raw)):
            ordered = sorted(samples)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            print(f"{name:20}{statistics.median(ordered) * 1e3:11.3f}{p95 * 1e3:10.3f}")
        print(f"ratio edge/raw: median {statistics.median(edge) / statistics.median(raw):.2f}x")
    finally:
        subscriber.disconnect()
        sender.disconnect()
        app.stop_event.set()
        await asyncio.wait_for(hubd, 15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", "--rounds", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = ProsodyServer(work / "prosody")
        for user, password in (("hub", "hubpass"), ("sub", "pass"), ("sender", "pass")):
            server.register(user, password)
        with server:
            asyncio.run(run(server, work, args.rounds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
