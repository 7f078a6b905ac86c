"""Plots: what a chart costs, which library draws it, and what hubd carries when none is asked.

Usage: python bench/plot.py [--rounds N] [--no-hubd]

* import time and peak memory of the two candidates in a fresh interpreter
  (Pillow's Image/ImageDraw/ImageFont vs matplotlib's pyplot on Agg), against
  a bare interpreter started the same way;
* the worker process for a 7-day chart of one reading a minute (10,080 per
  field: temperature, humidity, and a switch), as hubd hands it over (reduced
  to at most four points per pixel column): wall time and peak RSS of
  hubd's Pillow worker vs the same chart in matplotlib (bench/plot_matplotlib.py);
* end to end through hubd's own code: 10,080 readings in a real state file,
  read back, reduced and drawn (the 2 s target);
* hubd's resident memory as a daemon (a real ``hubd run`` on a Prosody with
  HTTP File Upload) before any plot, then after ``plot weather 7d`` answered.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Hubd, Row, hub_config, load, pty_pair, rss_mib, run_alone

from hubd.core.model import FieldSpec, FieldType, FieldValue
from hubd.events.store import Store
from hubd.events.subscriptions import encode_value
from hubd.events.tables import HistoryRow
from hubd.people.chart import ChartSpec, render
from hubd.people.history_commands import _panels, _points, chart_series
from hubd.testing.prosody import ProsodyServer

BENCH = Path(__file__).resolve().parent
WEEK = 7 * 86400
PER_MINUTE = 7 * 24 * 60  # 10,080
IMPORTS = {
    "bare interpreter": "pass",
    "Pillow": "from PIL import Image, ImageDraw, ImageFont",
    "matplotlib (Agg)": "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot",
}
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of this
# (large) bench process would report at least the bench's own size.
_HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
_PROBE = (
    "import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t, " + _HWM + ")"
)
#: Runs a worker module or script and reports its peak memory on stderr at exit.
_WRAP = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write('VmHWM %d\\n' % " + _HWM + ")); "
    "target = sys.argv.pop(1); sys.argv[0] = target; "
    "runpy.run_path(target, run_name='__main__') if target.endswith('.py') "
    "else runpy.run_module(target, run_name='__main__', alter_sys=True)"
)


def import_cost(code: str, rounds: int) -> tuple[float, float]:
    """Median import seconds and peak RSS (MiB) in a fresh interpreter."""
    times, peaks = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(code=code)],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.split()
        times.append(float(out[0]))
        peaks.append(int(out[1]) / 1024)
    return statistics.median(times), statistics.median(peaks)


def readings(now: float) -> dict[str, list[tuple[float, str, str]]]:
    """A week of one reading a minute: temperature, humidity; a window switching twice a day."""
    start = now - WEEK
    temperature, humidity, window = [], [], []
    for minute in range(PER_MINUTE):
        ts = start + 60 * minute
        day = minute / 1440 * 2 * math.pi
        temperature.append((ts, "numeric", f"{14 + 6 * math.sin(day) + (minute % 7) / 10:.1f}"))
        humidity.append((ts, "numeric", f"{60 - 15 * math.sin(day):.0f}"))
        if minute % 720 in (0, 30):
            window.append((ts, "boolean", "true" if minute % 720 == 0 else "false"))
    return {"temperature": temperature, "humidity": humidity, "window": window}


SPECS = {
    "temperature": FieldSpec(name="temperature", type=FieldType.NUMERIC, unit="°C"),
    "humidity": FieldSpec(name="humidity", type=FieldType.NUMERIC, unit="%"),
    "window": FieldSpec(name="window", type=FieldType.BOOLEAN),
}


def week_spec(now: float) -> ChartSpec:
    """The chart hubd asks its worker for: a week, reduced as hubd reduces it."""
    series = [
        (SPECS[name], _points(SPECS[name], rows, None, now - WEEK, now))
        for name, rows in readings(now).items()
    ]
    return ChartSpec("weather (Weather station)", "last 7 days", now - WEEK, now, _panels(series))


def worker_cost(args: list[str], spec: bytes, rounds: int) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MiB) of one worker process drawing ``spec``."""
    times, peaks = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _WRAP, *args],
            input=spec,
            capture_output=True,
            check=True,
            timeout=120,
        )
        times.append(time.perf_counter() - started)
        if not done.stdout.startswith(b"\x89PNG"):
            raise RuntimeError(f"{args}: no PNG")
        peak = done.stderr.decode().rsplit("VmHWM ", 1)[1].split()[0]
        peaks.append(int(peak) / 1024)
    return statistics.median(times), statistics.median(peaks)


async def seed(path: Path, now: float) -> None:
    store = Store(path)
    await store.open()
    rows = []
    for name, series in readings(now).items():
        for ts, kind, text in series:
            value = Decimal(text) if kind == "numeric" else text == "true"
            stamp = datetime.fromtimestamp(ts, UTC)
            rows.append(
                HistoryRow("weather", name, ts, encode_value(FieldValue(name, value, stamp)))
            )
    await store.record(rows)
    await store.close()


async def end_to_end(path: Path, rounds: int) -> float:
    """Median seconds from the state file to the PNG, through hubd's code."""
    times = []
    store = Store(path)
    await store.open()
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            end = time.time()
            series = []
            for spec in SPECS.values():
                _, points = await chart_series(store, "weather", spec, end - WEEK, end)
                series.append((spec, points))
            await render(ChartSpec("weather", "last 7 days", end - WEEK, end, _panels(series)))
            times.append(time.perf_counter() - started)
    finally:
        await store.close()
    return statistics.median(times)


async def hubd_rss(work: Path) -> tuple[float, float, float, bool]:
    """hubd's VmRSS (MiB): settled before any plot, after a first and a second
    ``plot weather 7d``; and whether Pillow was ever mapped into hubd."""
    import slixmpp

    server = ProsodyServer(work / "prosody", uploads=True)
    server.register("hub", "hubpass")
    server.register("reader", "pass")
    master = pty_pair(work / "weather-tty")
    devices = (
        f"  - {{id: weather, driver: serial.lines, port: {work / 'weather-tty'}, format: json,\n"
        '     fields: {temperature: {unit: "°C"}, humidity: {unit: "%"},\n'
        "              window: {type: boolean}}}\n"
    )
    config = hub_config(work, server, devices)
    await seed(work / "state" / "hubd.sqlite", time.time())
    with server:
        hub = Hubd(work, config)
        client = slixmpp.ClientXMPP(server.jid("reader") + "/bench", "pass")
        try:
            hub.wait_ready()
            hub.wait_connected()
            os.write(master, b'{"temperature": 20.5, "humidity": 50, "window": false}\n')
            client.ca_certs = str(server.ca_file)
            client.enable_direct_tls = False
            started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            client.add_event_handler("session_start", lambda _e: started.set_result(None))
            client.add_event_handler(
                "message", lambda m: answer.done() or answer.set_result(m["body"])
            )
            client.connect(server.host, server.port)
            await asyncio.wait_for(started, 30)
            client.send_presence()
            await asyncio.sleep(3)  # a settled daemon, as it idles on a Pi
            figures = [rss_mib(hub.pid)]
            for _ in range(2):
                answer = asyncio.get_running_loop().create_future()
                client.send_message(mto=server.jid("hub"), mbody="plot weather 7d", mtype="chat")
                body = await asyncio.wait_for(answer, 60)
                if not body.startswith("https://"):
                    raise RuntimeError(f"plot answered: {body}")
                figures.append(rss_mib(hub.pid))
            maps = Path(f"/proc/{hub.pid}/maps").read_text()
            pillow_loaded = "PIL" in maps or "_imaging" in maps
        finally:
            client.disconnect()
            hub.stop()
            os.close(master)
    return figures[0], figures[1], figures[2], pillow_loaded


def run(args: argparse.Namespace) -> list[Row]:
    rounds = 2 if args.quick else args.rounds
    rows: list[Row] = []
    _, base_rss = import_cost(IMPORTS["bare interpreter"], rounds)
    try:
        import matplotlib  # noqa: F401  (only compared here: pip install matplotlib)

        candidates = ("Pillow", "matplotlib (Agg)")
    except ImportError:
        candidates = ("Pillow",)
        rows.append(Row("matplotlib", "not installed: pip install matplotlib to compare"))
    for name in candidates:
        seconds, peak = import_cost(IMPORTS[name], rounds)
        rows.append(
            Row(
                f"import {name}, ms / peak RSS MiB (load {load()})",
                f"{seconds * 1000:.0f} / {peak:.1f}",
                f"bare interpreter: {base_rss:.1f} MiB",
                f"{peak / base_rss:.1f}x RSS",
            )
        )
    spec = week_spec(time.time()).to_json()
    pillow = worker_cost(["hubd.people.chart_drawing"], spec, rounds)
    mpl = (
        worker_cost([str(BENCH / "plot_matplotlib.py")], spec, rounds)
        if len(candidates) > 1
        else None
    )
    rows.append(
        Row(
            "7-day chart worker (3 x 10,080 readings), s / peak RSS MiB",
            f"Pillow {pillow[0]:.2f} / {pillow[1]:.1f}",
            f"matplotlib {mpl[0]:.2f} / {mpl[1]:.1f}" if mpl else "",
            f"{mpl[0] / pillow[0]:.1f}x time, {mpl[1] / pillow[1]:.1f}x RSS" if mpl else "",
        )
    )
    with tempfile.TemporaryDirectory(prefix="hubd-bench-plot-") as tmp:
        path = Path(tmp) / "hubd.sqlite"
        asyncio.run(seed(path, time.time()))
        seconds = asyncio.run(end_to_end(path, rounds))
        rows.append(
            Row(
                "7-day chart end to end (state file -> PNG), s",
                f"{seconds:.2f}",
                f"worker alone {pillow[0]:.2f}",
                f"{seconds / pillow[0]:.2f}x",
                "< 2 s",
                seconds < 2.0,
            )
        )
    if not args.no_hubd:
        with tempfile.TemporaryDirectory(prefix="hubd-bench-plot-") as tmp:
            before, first, second, pillow_loaded = asyncio.run(hubd_rss(Path(tmp)))
        rows.append(
            Row(
                "hubd VmRSS MiB: no plot yet / after a 1st / after a 2nd 7-day plot",
                f"{before:.1f} / {first:.1f} / {second:.1f}",
                f"no plot {before:.1f}",
                f"{second / before:.2f}x",
                "no drawing library in hubd; no growth per plot",
                not pillow_loaded and second - first < 0.5,
            )
        )
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--quick", action="store_true", help="two rounds")
    parser.add_argument("--no-hubd", action="store_true", help="skip the daemon's RSS")


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    sys.exit(main())
