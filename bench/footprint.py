"""Resident memory and startup time, against a bare slixmpp client in the same run.

Configurations of hubd (each a fresh state directory, ``hubd run`` spawned
with a notify socket, as systemd does):

* **four devices** on three buses: ``gpio.output``, ``gpio.input``,
  ``gpio.pwm`` on mock pins and a ``serial.lines`` JSON device on a
  pseudo-terminal (a small house, as a user configures it);
* **204 devices**: those four, 23 more on mock GPIO pins and 177
  ``serial.lines`` devices on pseudo-terminals;
* **1-Wire 100 and 1,000**: DS18B20 thermometers (``gpio.onewire``) on a fake
  sysfs tree, the driver that scales to any count: the startup target at 100,
  the cost per device at 1,000.

For each: the time from spawn to ``READY=1`` (every driver had its first
start attempt) and to ``STATUS=connected...``, and the resident memory
(VmRSS) after ``--settle`` seconds connected ("at rest").

Baselines, in the same run (bench/bare_client.py, connected to the same
server: connect, session, presence):

* **bare client**: ``ClientXMPP`` with no plugin registered; every ratio is
  against this one;
* **client with hubd's plugins**: the same with the XEP plugins hubd always
  registers (``hubd.xmpp.client.PLUGINS``): what of hubd's cost is slixmpp's.

Usage: python bench/footprint.py [--onewire 100,1000] [--settle 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from common import (
    BareClient,
    Hubd,
    Row,
    hub_config,
    load,
    make_server,
    onewire_devices,
    pty_pair,
    rss_mib,
    run_alone,
)

from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.client import PLUGINS

FOUR = """\
  - {{id: gate, driver: gpio.output, pin: 17, active_high: false}}
  - {{id: door, driver: gpio.input, pin: 27, pull_up: true, bounce_time: 0.05}}
  - {{id: dimmer, driver: gpio.pwm, pin: 18, frequency: 200, initial: 0.25}}
  - {{id: probe, driver: serial.lines, port: {tty}, format: json,
     fields: {{v: {{type: numeric, unit: "°C"}}}}}}
"""
MORE_PINS = [pin for pin in range(28) if pin not in (17, 18, 27)][:23]
MORE_SERIAL = 177


class Case:
    """One hubd configuration: its devices (and the pseudo-terminals it needs)."""

    def __init__(self, name: str, build: Callable[[Path], str], extra: str = "") -> None:
        self.name = name
        self.build = build
        self.extra = extra
        self.masters: list[int] = []

    def devices(self, work: Path) -> str:
        self.close()
        return self.build(work)

    def tty(self, work: Path, name: str) -> Path:
        """A pseudo-terminal for one serial device (held open until :meth:`close`)."""
        link = work / f"{name}.tty"
        self.masters.append(pty_pair(link))
        return link

    def close(self) -> None:
        for fd in self.masters:
            os.close(fd)
        self.masters.clear()


def four_devices(case: Case) -> Callable[[Path], str]:
    return lambda work: FOUR.format(tty=case.tty(work, "probe"))


def many_devices(case: Case) -> Callable[[Path], str]:
    def build(work: Path) -> str:
        lines = [FOUR.format(tty=case.tty(work, "probe"))]
        for index, pin in enumerate(MORE_PINS):
            if index % 2 or pin in (2, 3):  # GPIO2/3 have fixed pull-ups: outputs
                lines.append(f"  - {{id: out{pin}, driver: gpio.output, pin: {pin}}}\n")
            else:
                lines.append(f"  - {{id: in{pin}, driver: gpio.input, pin: {pin}}}\n")
        for index in range(MORE_SERIAL):
            tty = case.tty(work, f"s{index}")
            lines.append(
                f"  - {{id: s{index}, driver: serial.lines, port: {tty}, format: json, "
                "fields: {v: {type: numeric}}}\n"
            )
        return "".join(lines)

    return build


def onewire(count: int) -> Callable[[Path], str]:
    return lambda work: onewire_devices(work, count)


GPIO_MOCK = "gpio: {pin_factory: mock}\n"
# The targets are for hubd without optional extras: OMEMO is on by default when
# the omemo extra is installed (./dev setup installs it), so the target rows turn
# it off and, with the extra present, one more row measures what its user gets.
NO_OMEMO = "omemo: {enabled: false}\n"
OMEMO_ON = "omemo: {enabled: true}\n"


def omemo_installed() -> bool:
    return importlib.util.find_spec("slixmpp_omemo") is not None


def cases(args: argparse.Namespace) -> list[tuple[Case, str | None]]:
    """Each configuration with its RSS target (None: measured, no target)."""
    four = Case("four devices (3 GPIO, 1 serial)", lambda _w: "", GPIO_MOCK + NO_OMEMO)
    four.build = four_devices(four)
    many = Case("204 devices (27 GPIO, 177 serial)", lambda _w: "", GPIO_MOCK + NO_OMEMO)
    many.build = many_devices(many)
    chosen: list[tuple[Case, str | None]] = [(four, "1.3"), (many, "1.5")]
    for count in (int(n) for n in str(args.onewire).split(",") if n):
        chosen.append((Case(f"{count} 1-Wire devices", onewire(count), NO_OMEMO), None))
    return chosen


def bare_baseline(server: ProsodyServer, rounds: int, *extra: str) -> tuple[float, float]:
    """Median (seconds to session, RSS MiB) of a bare slixmpp client."""
    times, sizes = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        client = BareClient(server, "bare", *extra)
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
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["bare"])
        with server:
            bare_time, bare_rss = bare_baseline(server, args.rounds)
            _, plugins_rss = bare_baseline(server, args.rounds, "--plugins", ",".join(PLUGINS))
            rows.append(
                Row(
                    f"slixmpp client with hubd's plugins, RSS (load {load()})",
                    "",
                    f"{plugins_rss:.1f} MiB; bare client {bare_rss:.1f} MiB",
                    f"{plugins_rss / bare_rss:.2f}x",
                )
            )
            bare = f"bare client {bare_rss:.1f} MiB"
            for case, target in cases(args):
                ready, connected, steady = measure(work, server, case, args, "asyncio")
                t_ready, t_conn = statistics.median(ready), statistics.median(connected)
                at_100 = case.name.startswith("100 ")
                rows.append(
                    Row(
                        f"startup to READY, {case.name} (load {load()})",
                        f"{t_ready:.2f} s (connected {t_conn:.2f} s)",
                        f"bare client session {bare_time:.2f} s",
                        f"{t_conn / bare_time:.2f}x connected",
                        "<= 1 s" if at_100 else "",
                        t_ready <= 1.0 if at_100 else None,
                    )
                )
                rss = statistics.median(steady)
                rows.append(
                    Row(
                        f"resident memory at rest, {case.name} (load {load()})",
                        f"{rss:.1f} MiB ({rss / plugins_rss:.2f}x with plugins)",
                        bare,
                        f"{rss / bare_rss:.2f}x",
                        f"<= {target}x bare" if target else "",
                        rss <= float(target) * bare_rss if target else None,
                    )
                )
            if omemo_installed():
                case = cases(args)[0][0]
                case.name, case.extra = f"{case.name}, OMEMO on", GPIO_MOCK + OMEMO_ON
                rss = statistics.median(measure(work, server, case, args, "asyncio")[2])
                rows.append(
                    Row(
                        f"resident memory at rest, {case.name} (omemo extra; load {load()})",
                        f"{rss:.1f} MiB",
                        bare,
                        f"{rss / bare_rss:.2f}x",
                    )
                )
            if args.uvloop:
                case = cases(args)[0][0]
                rss = statistics.median(measure(work, server, case, args, "uvloop")[2])
                rows.append(
                    Row(
                        f"resident memory, {case.name}, uvloop installed (load {load()})",
                        f"{rss:.1f} MiB",
                        bare,
                        f"{rss / bare_rss:.2f}x",
                    )
                )
    return rows


def measure(
    work: Path, server: ProsodyServer, case: Case, args: argparse.Namespace, loop: str
) -> tuple[list[float], list[float], list[float]]:
    """Seconds to READY and to connected, MiB settled, one per round."""
    ready, connected, rss_steady = [], [], []
    for _ in range(args.rounds):
        folder = work / "hub"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        config = hub_config(folder, server, case.devices(folder), extra=case.extra)
        hubd = Hubd(folder, config, loop=loop)
        try:
            ready.append(hubd.wait_ready())
            connected.append(hubd.wait_connected())
            time.sleep(args.settle)
            rss_steady.append(rss_mib(hubd.pid))
        finally:
            hubd.stop()
            case.close()
    return ready, connected, rss_steady


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--onewire", default="100,1000", help="1-Wire device counts")
    parser.add_argument("--settle", type=float, default=5, help="seconds connected before RSS")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument(
        "--no-uvloop", dest="uvloop", action="store_false", help="skip the uvloop row"
    )


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
