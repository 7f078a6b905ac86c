"""SD-card wear: bytes hubd writes to the disk per hour at a small house's load.

hubd runs with 10 ``serial.lines`` devices, each on a pseudo-terminal; the
devices take turns, one new value per second in all (each device every 10 s),
so every value is a change: an event, and a history row when the history
keeps it (``events.history_sample``).  Each device has a
subscriber of its own (10 lightweight raw clients, ``bench/common.py``
``RawClient``), all online.  The events settings are the defaults (no
``events:`` key), and the store starts with ``--history-days`` of readings
at that load (7 by default: the default ``history_days``, so the store is as
big as it stays on a Pi that has run for a week, and its index as wide; a new
store writes less).  After ``--warmup`` seconds (the store created, the first
checkpoint) the bench reads ``write_bytes`` of ``/proc/<pid>/io`` (bytes the
process made the kernel send to the disk, counted when a page of the page
cache becomes dirty), runs for ``--seconds``, reads it again and extrapolates
to MiB/h.  The WAL header's checkpoint sequence number (bytes 12-16 of
``hubd.sqlite-wal``, bumped each time a checkpoint lets the WAL start again
from its beginning) counts the checkpoints.  Events that never arrived are
counted too: fewer writes must not mean lost events.

A run of minutes does not see the store's periodic upkeep (merging the
recent readings into the indexed history, pruning, WAL checkpoints): after
hubd stopped, ``bench/wear_upkeep.py`` does that work, with hubd's code, on a
copy of the store, counts its ``write_bytes``, and scales it to the readings
and the WAL of one hour of the run; the last row adds it all up.

The state directory is on the same file system as the temporary directory
(ext4 here): a tmpfs counts no ``write_bytes`` at all, so ``--dir`` may point
elsewhere.

Usage: python bench/wear.py [--seconds 600] [--warmup 30] [--history-days 7] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hubd.core.model import FieldValue
from hubd.events.tables import SCHEMA

try:  # the compact form the history keeps (since issue 16); before it, the event's
    from hubd.events.tables import history_value as encode
except ImportError:
    from hubd.events.subscriptions import encode_value as encode
try:  # which readings the history keeps with the default settings (since issue 16)
    from hubd.core.settings import EventsSettings
    from hubd.events.history_sampling import HistorySampler
except ImportError:
    HistorySampler = None  # type: ignore[assignment,misc]  # before: every change

from common import (
    Hubd,
    RawClient,
    Row,
    hub_config,
    load,
    make_server,
    pty_pair,
    run_alone,
)

EV = "urn:xmpp:iot:events"
DEVICES = 10
BUDGET_MIB_PER_HOUR = 2.0


def io_counters(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io`` as numbers."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        values[key.strip()] = int(value)
    return values


def checkpoint_seq(wal: Path) -> int:
    """The WAL header's checkpoint sequence number (0 when there is no WAL yet)."""
    try:
        with wal.open("rb") as handle:
            head = handle.read(16)
    except FileNotFoundError:
        return 0
    return struct.unpack(">I", head[12:16])[0] if len(head) == 16 else 0


def prefill(path: Path, days: float) -> int:
    """A store that has run for ``days`` at this load: its history full (as hubd's
    history_days of 7 keeps it), so the index is as deep and wide as on a Pi."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    count = int(days * 86400)
    sampler = HistorySampler(EventsSettings()) if HistorySampler is not None else None
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        rows = []
        for n in range(count):
            ts = now - count + n
            value = FieldValue("v", Decimal(n), datetime.fromtimestamp(ts, UTC))
            if sampler is not None and not sampler.rows(f"d{n % DEVICES}", [value]):
                continue  # what hubd's defaults would not have stored
            rows.append((f"d{n % DEVICES}", "v", ts, json.dumps(encode(value))))
        db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)", rows)
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(rows)


def upkeep(state: Path, rows_per_hour: float) -> dict[str, float] | None:
    """What the store's periodic upkeep writes per hour (bench/wear_upkeep.py), on a
    copy of ``state``; None before issue 16 (hubd pruned hourly, nothing else)."""
    if HistorySampler is None:
        return None
    copy = state.with_name("upkeep.sqlite")
    shutil.copy(state, copy)
    script = Path(__file__).with_name("wear_upkeep.py")
    out = subprocess.run(
        [sys.executable, str(script), str(copy), str(rows_per_hour)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def stored_since(state: Path, since: float, until: float) -> int:
    """Readings hubd stored with a time between ``since`` and ``until``."""
    with closing(sqlite3.connect(state)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return sum(
            db.execute(
                f"SELECT COUNT(*) FROM {t} WHERE ts >= ? AND ts < ?", (since, until)
            ).fetchone()[0]
            for t in ("history", "recent")
            if t in tables
        )


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def run_async(args: argparse.Namespace, server, work: Path) -> list[Row]:  # type: ignore[no-untyped-def]
    ptys = [pty_pair(work / f"tty{i}") for i in range(DEVICES)]
    devices = "".join(
        f"  - {{id: d{i}, driver: serial.lines, port: {work / f'tty{i}'}, format: json,\n"
        "     fields: {v: {type: numeric}}}\n"
        for i in range(DEVICES)
    )
    config = hub_config(work, server, devices, extra=args.extra + "\n" if args.extra else "")
    state = work / "state" / "hubd.sqlite"
    if args.history_days:
        prefill(state, args.history_days)
    hubd = Hubd(work, config)
    clients = [RawClient(server, f"sub{i}") for i in range(DEVICES)]
    wal = state.with_name("hubd.sqlite-wal")
    hub = f"{server.jid('hub')}/hubd"
    sent = 0
    try:
        hubd.wait_ready()
        hubd.wait_connected()
        for index, client in enumerate(clients):
            await client.connect()
            request = f"<subscribe xmlns='{EV}' seqnr='1'><node nodeId='d{index}'/></subscribe>"
            await client.iq(hub, request, f"sub{index}")
        start = time.monotonic()
        measured_from = start + args.warmup
        end = measured_from + args.seconds
        before: dict[str, int] | None = None
        seq_before = size_before = wal_before = 0
        wall_from = 0.0
        while (now := time.monotonic()) < end:
            if before is None and now >= measured_from:
                before = io_counters(hubd.pid)
                seq_before, size_before = checkpoint_seq(wal), file_size(state)
                wal_before, wall_from = file_size(wal), time.time()
            # One value per second in all: device (n mod 10) sends n, a new value each time.
            due = int(now - start) + 1
            while sent < due:
                os.write(ptys[sent % DEVICES], b'{"v": %d}\n' % sent)
                sent += 1
            await asyncio.sleep(start + due - time.monotonic())
        after = io_counters(hubd.pid)
        if args.keep:  # as it is before hubd folds the WAL in at its stop
            for suffix in ("", "-wal"):
                shutil.copy(f"{state}{suffix}", work / f"snapshot.sqlite{suffix}")
        seq_after, size_after = checkpoint_seq(wal), file_size(state)
        wal_size, wall_to = file_size(wal), time.time()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if all(len(c.values) >= len(range(i, sent, DEVICES)) for i, c in enumerate(clients)):
                break
            await asyncio.sleep(0.1)
        lost = sum(
            len(set(range(i, sent, DEVICES)) - client.values) for i, client in enumerate(clients)
        )
    finally:
        for client in clients:
            await client.close()
        hubd.stop()
        for fd in ptys:
            os.close(fd)
    assert before is not None
    hours = args.seconds / 3600
    written = after["write_bytes"] - before["write_bytes"]
    cancelled = after["cancelled_write_bytes"] - before["cancelled_write_bytes"]
    per_hour = written / hours / 2**20
    checkpoints = seq_after - seq_before
    # The WAL hubd appended (when no checkpoint started it again in the window).
    wal_per_hour = (wal_size - wal_before) / hours if checkpoints == 0 else 0.0
    rows_per_hour = stored_since(state, wall_from, wall_to) / hours
    rows = [
        Row(
            f"disk writes of hubd, {DEVICES} devices, 1 change/s in all, a subscriber on each, "
            f"{args.seconds:g} s, {args.history_days:g} days of history before"
            f" ({sent} values, lost {lost}; load {load()})",
            f"{per_hour:.2f} MiB/h write_bytes ({written} B; cancelled {cancelled} B)",
        ),
        Row(
            "WAL checkpoints (same run)",
            f"{checkpoints} ({checkpoints / hours:.0f}/h); WAL +{wal_per_hour / 2**20:.2f} MiB/h,"
            f" {wal_size / 1024:.0f} KiB at the end;"
            f" database +{(size_after - size_before) / 1024:.0f} KiB;"
            f" {rows_per_hour:.0f} readings stored per hour",
        ),
    ]
    total = per_hour
    costs = upkeep(state, rows_per_hour)
    if costs is not None:
        merge = costs["merge_per_hour"] / 2**20
        prune = costs["prune_per_hour"] / 2**20
        wal_hour = wal_per_hour + costs["wal_per_hour"]
        checkpoint = costs["checkpoint_per_wal_byte"] * wal_hour / 2**20
        total += merge + prune + checkpoint
        rows.append(
            Row(
                "store upkeep, measured on a copy of the store (bench/wear_upkeep.py)",
                f"merge {merge:.2f} MiB/h ({costs['merge_bytes'] / 1024:.0f} KiB per"
                f" {costs['merge_rows']:.0f} readings); prune {prune:.2f} MiB/h"
                f" ({costs['prune_bytes'] / 1024:.0f} KiB every {costs['prune_every_hours']:g} h);"
                f" checkpoints {checkpoint:.2f} MiB/h"
                f" ({costs['checkpoint_per_wal_byte']:.2f} B per WAL byte,"
                f" {wal_hour / 2**20:.2f} MiB/h of WAL)",
            )
        )
    # A window without a commit of the readings measures nothing (--quick):
    # a smoke run, no verdict.
    interval = commit_interval(args.extra)
    short = args.seconds < interval
    note = f" (window < commit_interval {interval:g} s: smoke run, no figure)" if short else ""
    rows.append(
        Row(
            "disk writes per hour in all (hubd's + upkeep + checkpoints)" + note,
            f"{total:.2f} MiB/h",
            f"budget {BUDGET_MIB_PER_HOUR:g} MiB/h",
            f"{total / BUDGET_MIB_PER_HOUR:.2f}x budget",
            f"<= {BUDGET_MIB_PER_HOUR:g} MiB/h, lost 0",
            None if short and lost == 0 else total <= BUDGET_MIB_PER_HOUR and lost == 0,
        )
    )
    return rows


def commit_interval(extra: str) -> float:
    """events.commit_interval of this run (``--extra``, else hubd's default; 0 before it)."""
    import yaml

    events = (yaml.safe_load(extra) or {}).get("events", {}) if extra else {}
    if "commit_interval" in events:
        return float(events["commit_interval"])
    if HistorySampler is None:
        return 0.0  # before issue 16: a commit per batch
    return float(EventsSettings().commit_interval)


def fs_type(path: Path) -> str:
    """The file system type of ``path`` (the longest mount point over it)."""
    best, kind = "", "unknown"
    real = str(path.resolve())
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def run(args: argparse.Namespace) -> list[Row]:
    where = Path(args.dir or tempfile.gettempdir())
    if fs_type(where) in ("tmpfs", "ramfs"):
        # Writes to RAM count no write_bytes: the figure would be a meaningless 0.
        raise RuntimeError(f"{where} is a {fs_type(where)}: give --dir on a disk")
    if args.keep:  # the state, the WAL and the log stay, to be looked at
        work = Path(tempfile.mkdtemp(dir=args.dir))
        print(f"wear: keeping {work}")
        with make_server(work, [f"sub{i}" for i in range(DEVICES)]) as server:
            return asyncio.run(run_async(args, server, work))
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        server = make_server(work, [f"sub{i}" for i in range(DEVICES)])
        with server:
            return asyncio.run(run_async(args, server, work))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=600, help="length of the measurement")
    parser.add_argument("--warmup", type=float, default=30, help="seconds before measuring")
    parser.add_argument(
        "--dir",
        default="/var/tmp" if Path("/var/tmp").is_dir() else None,
        help="where the state goes (not a tmpfs; default /var/tmp)",
    )
    parser.add_argument(
        "--history-days", type=float, default=7, help="history in the store before (0: a new one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--extra", default="", help="more config (YAML), e.g. an events: key")


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
