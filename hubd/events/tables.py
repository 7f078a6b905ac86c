"""The state file's tables: their schema, the rows hubd reads back, the statements that write them.

Plain SQL on a connection the store (``hubd/events/store.py``) hands in,
inside its transaction, on its worker thread; the store owns the file, the
thread and what a failure means.

Readings go first into ``recent``, a table without an index: appending to it
touches one or two pages per commit, where ``history``'s index on (node,
field, time) has one tail per field and rewrites a page of each (and their
neighbours when one splits) at every commit.  :func:`merge_recent` moves them
into ``history`` in one transaction once there are many, and the readers read
both (:data:`ALL_READINGS`).  This is what keeps a Pi's SD card from wearing
out (bench/wear.py, bench/RESULTS.md "SD-card wear").
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hubd.core.model import FieldValue, format_lexical, value_type

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    subscriber TEXT NOT NULL,
    node_id TEXT NOT NULL,
    target TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    channel TEXT NOT NULL DEFAULT 'iot',
    PRIMARY KEY (subscriber, node_id, channel)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber TEXT NOT NULL,
    created REAL NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_subscriber ON outbox (subscriber, id);
CREATE TABLE IF NOT EXISTS dropped (
    subscriber TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    node_id TEXT NOT NULL,
    field TEXT NOT NULL,
    ts REAL NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_lookup ON history (node_id, field, ts);
CREATE TABLE IF NOT EXISTS recent (
    node_id TEXT NOT NULL,
    field TEXT NOT NULL,
    ts REAL NOT NULL,
    value TEXT NOT NULL
);
"""

#: Every stored reading: the indexed history and the recent ones not merged into it yet
#: (SQLite pushes the WHERE into both and merges the two ordered results).
ALL_READINGS = (
    "(SELECT node_id, field, ts, value FROM history"
    " UNION ALL SELECT node_id, field, ts, value FROM recent)"
)


@dataclass(frozen=True, slots=True)
class StoredSubscription:
    """A subscription row: who, which node, where to deliver, its spec and state (JSON)."""

    subscriber: str
    node_id: str
    target: str
    spec: dict[str, Any]
    state: dict[str, Any]
    channel: str = "iot"


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event waiting in the outbox for delivery."""

    id: int
    subscriber: str
    created: float
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One stored reading."""

    node_id: str
    field: str
    ts: float
    value: dict[str, Any]


def select_subscriptions(db: sqlite3.Connection) -> list[StoredSubscription]:
    rows = db.execute("SELECT * FROM subscriptions ORDER BY rowid").fetchall()
    return [
        StoredSubscription(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), r[5]) for r in rows
    ]


def max_event_id(db: sqlite3.Connection) -> int:
    """The highest event id ever used (ids are never reused)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    top = db.execute("SELECT MAX(id) FROM outbox").fetchone()
    return max(int(row[0]) if row else 0, int(top[0] or 0))


def select_pending(db: sqlite3.Connection, subscriber: str | None) -> list[QueuedEvent]:
    """Undelivered events in order (all, or one subscriber's)."""
    if subscriber is None:
        rows = db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    else:
        rows = db.execute(
            "SELECT * FROM outbox WHERE subscriber = ? ORDER BY id", (subscriber,)
        ).fetchall()
    return [QueuedEvent(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


def insert_events(
    db: sqlite3.Connection,
    items: Sequence[tuple[int | None, str, dict[str, Any] | str]],
    limit: int,
) -> list[int | None]:
    """Insert events (dicts, or their JSON text); the ids line up with ``items``.

    None: dropped at once, queue full.
    """
    now = time.time()
    ids: list[int | None] = []
    insert = "INSERT INTO outbox (id, subscriber, created, event) VALUES (?, ?, ?, ?)"
    if all(event_id is not None for event_id, _, _ in items):
        # The engine numbers its events: one executemany instead of a call per row.
        db.executemany(
            insert,
            (
                (event_id, subscriber, now, event if isinstance(event, str) else json.dumps(event))
                for event_id, subscriber, event in items
            ),
        )
        ids = [event_id for event_id, _, _ in items]
    else:
        for event_id, subscriber, event in items:
            text = event if isinstance(event, str) else json.dumps(event)
            cursor = db.execute(insert, (event_id, subscriber, now, text))
            ids.append(int(cursor.lastrowid or 0))
    dropped: set[int] = set()
    for subscriber in {s for _, s, _ in items}:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE subscriber = ?", (subscriber,)
        ).fetchone()
        excess = count - limit
        if excess > 0:
            oldest = db.execute(
                "SELECT id FROM outbox WHERE subscriber = ? ORDER BY id LIMIT ?",
                (subscriber, excess),
            ).fetchall()
            dropped.update(row[0] for row in oldest)
            db.executemany("DELETE FROM outbox WHERE id = ?", oldest)
            db.execute(
                "INSERT INTO dropped VALUES (?, ?) ON CONFLICT(subscriber)"
                " DO UPDATE SET count = count + excluded.count",
                (subscriber, excess),
            )
    return [None if i in dropped else i for i in ids]


def subscription_row(sub: StoredSubscription) -> tuple[str, str, str, str, str, str]:
    return (
        sub.subscriber,
        sub.node_id,
        sub.target,
        json.dumps(sub.spec),
        json.dumps(sub.state),
        sub.channel,
    )


def save_subscription_rows(
    db: sqlite3.Connection, rows: Sequence[tuple[str, str, str, str, str, str]]
) -> None:
    db.executemany("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?, ?)", rows)


def delete_delivered(db: sqlite3.Connection, ids: Sequence[int]) -> None:
    db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])


def update_states(
    db: sqlite3.Connection, states: Sequence[tuple[str, str, str, str, dict[str, Any]]]
) -> None:
    db.executemany(
        "UPDATE subscriptions SET target = ?, state = ?"
        " WHERE subscriber = ? AND node_id = ? AND channel = ?",
        [
            (target, json.dumps(state), sub, node, channel)
            for sub, node, channel, target, state in states
        ],
    )


def history_value(value: FieldValue) -> dict[str, Any]:
    """What a history row keeps of a value: its type and lexical form, its quality
    when it has one.  The name and the time are the row's own columns (see
    :func:`read_history_value`): 30 bytes a row instead of 100."""
    kind = value_type(value.value)
    kept: dict[str, Any] = {"t": kind.value, "v": format_lexical(kind, value.value)}
    if value.quality:
        kept["q"] = sorted(value.quality)
    return kept


def read_history_value(field: str, ts: float, text: str) -> dict[str, Any]:
    """A stored value in the form of ``encode_value`` (older rows carry it whole)."""
    value: dict[str, Any] = json.loads(text)
    value.setdefault("n", field)
    value.setdefault("ts", datetime.fromtimestamp(ts, UTC).isoformat())
    value.setdefault("q", [])
    return value


def _history_params(rows: Sequence[HistoryRow]) -> list[tuple[str, str, float, str]]:
    return [(r.node_id, r.field, r.ts, json.dumps(r.value, separators=(",", ":"))) for r in rows]


def insert_history(db: sqlite3.Connection, rows: Sequence[HistoryRow]) -> None:
    db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)", _history_params(rows))


def insert_recent(db: sqlite3.Connection, rows: Sequence[HistoryRow]) -> None:
    """Add readings to ``recent`` (cheap to append to; see the module's doc)."""
    db.executemany("INSERT INTO recent VALUES (?, ?, ?, ?)", _history_params(rows))


def count_recent(db: sqlite3.Connection) -> int:
    """Readings in ``recent`` (an immutable file opened on a full disk may lack it)."""
    try:
        return int(db.execute("SELECT COUNT(*) FROM recent").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def merge_recent(db: sqlite3.Connection) -> int:
    """Move the readings of ``recent`` into the indexed ``history``; return how many."""
    moved = db.execute(
        "INSERT INTO history SELECT node_id, field, ts, value FROM recent ORDER BY rowid"
    ).rowcount
    db.execute("DELETE FROM recent")
    return int(moved)


def prune_readings(db: sqlite3.Connection, before: float) -> int:
    """Delete the readings older than ``before`` (history and recent); return how many."""
    old = db.execute("DELETE FROM history WHERE ts < ?", (before,)).rowcount
    return int(old) + int(db.execute("DELETE FROM recent WHERE ts < ?", (before,)).rowcount)


def select_history(
    db: sqlite3.Connection,
    node_id: str,
    fields: Sequence[str],
    start: float,
    end: float,
    limit: int,
) -> list[HistoryRow]:
    """The readings of a node (of ``fields``, or all) between ``start`` and ``end``."""
    query = f"SELECT * FROM {ALL_READINGS} WHERE node_id = ? AND ts >= ? AND ts <= ?"
    params: list[Any] = [node_id, start, end]
    if fields:
        query += f" AND field IN ({', '.join('?' * len(fields))})"
        params.extend(fields)
    query += " ORDER BY ts LIMIT ?"
    params.append(limit)
    return [
        HistoryRow(r[0], r[1], r[2], read_history_value(r[1], r[2], r[3]))
        for r in db.execute(query, params)
    ]


#: One stored reading of one field, as the summaries and charts read it:
#: (epoch seconds, XEP-0323 type, lexical value).
Reading = tuple[float, str, str]

_READING = f"SELECT ts, json_extract(value, '$.t'), json_extract(value, '$.v') FROM {ALL_READINGS}"


def select_readings(
    db: sqlite3.Connection, node_id: str, field: str, start: float, end: float, limit: int
) -> list[Reading]:
    """The readings of one field between ``start`` and ``end``, oldest first; beyond
    ``limit``, the newest ``limit`` of them."""
    rows = db.execute(
        _READING
        + " WHERE node_id = ? AND field = ? AND ts >= ? AND ts <= ? ORDER BY ts DESC LIMIT ?",
        (node_id, field, start, end, limit),
    ).fetchall()
    rows.reverse()
    return [(float(ts), str(kind), str(text)) for ts, kind, text in rows]


def select_reading_before(
    db: sqlite3.Connection, node_id: str, field: str, before: float
) -> Reading | None:
    """The last reading of one field before ``before``: the value it held then."""
    row = db.execute(
        _READING + " WHERE node_id = ? AND field = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
        (node_id, field, before),
    ).fetchone()
    return None if row is None else (float(row[0]), str(row[1]), str(row[2]))


def select_extremes(
    db: sqlite3.Connection, node_id: str, field: str, start: float, end: float, columns: int
) -> list[tuple[float, float]]:
    """A number's readings between ``start`` and ``end`` as a chart can show them:
    the lowest and the highest of each of ``columns`` equal slices of time, in order.

    SQLite does the work, so hubd never holds a month of readings to draw a line.
    """
    width = (end - start) / columns
    rows = db.execute(
        "SELECT CAST((ts - ?) / ? AS INTEGER) AS slice, MIN(x), MAX(x) FROM"
        f" (SELECT ts, CAST(json_extract(value, '$.v') AS REAL) AS x FROM {ALL_READINGS}"
        "  WHERE node_id = ? AND field = ? AND ts >= ? AND ts <= ?)"
        " GROUP BY slice ORDER BY slice",
        (start, width, node_id, field, start, end),
    ).fetchall()
    points: list[tuple[float, float]] = []
    for index, low, high in rows:
        points.append((start + (index + 0.25) * width, float(low)))
        if high != low:
            points.append((start + (index + 0.75) * width, float(high)))
    return points


def count_readings(
    db: sqlite3.Connection, node_id: str, field: str, start: float, end: float
) -> int:
    """How many readings of one field lie between ``start`` and ``end``."""
    (count,) = db.execute(
        f"SELECT COUNT(*) FROM {ALL_READINGS}"
        " WHERE node_id = ? AND field = ? AND ts >= ? AND ts <= ?",
        (node_id, field, start, end),
    ).fetchone()
    return int(count)
