"""What the event engine writes, and when (SD-card wear: hubd/events/pending.py).

A real store on disk, read from outside with sqlite3 (as a restart after
``kill -9`` would find it), and the engine with a fake delivery side whose
acknowledgements the test gives.  Nothing sleeps and hopes: a test waits for
a condition with a timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from test_subscriptions import FakeSink, Thermometer, value

from hubd.core.driver import DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import NodeState
from hubd.core.node import Node
from hubd.core.settings import EventsSettings
from hubd.events.engine import EventEngine
from hubd.events.store import Store
from hubd.events.subscriptions import SubscriptionSpec
from hubd.events.tables import (
    ALL_READINGS,
    SCHEMA,
    HistoryRow,
    count_readings,
    insert_history,
    insert_recent,
    merge_recent,
    prune_readings,
    select_extremes,
    select_reading_before,
    select_readings,
)
from hubd.testing.drivers import make_context


@dataclass
class Rig:
    hub: Hub
    store: Store
    engine: EventEngine
    sink: FakeSink
    path: Path
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """As hubd stops: the engine's task cancelled, then close() writes what it held."""
        if not self.task.done():
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task
            await self.engine.close()

    def rows(self, query: str) -> list[tuple[object, ...]]:
        """What the file holds now, read by another connection."""
        with closing(sqlite3.connect(self.path)) as db:
            return db.execute(query).fetchall()

    def readings(self) -> list[str]:
        """The stored readings' values, the history and the recent ones."""
        query = f"SELECT json_extract(value, '$.v') FROM {ALL_READINGS} ORDER BY ts"
        return [str(r[0]) for r in self.rows(query)]

    def outbox(self) -> list[int]:
        return [int(str(r[0])) for r in self.rows("SELECT id FROM outbox ORDER BY id")]

    async def until(self, condition: str, check: object) -> None:
        """Wait (bounded) until the file shows ``check`` for ``condition``."""
        async with asyncio.timeout(10):
            while self.rows(condition) != check:  # noqa: ASYNC110 - another process's view
                await asyncio.sleep(0.02)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    ctx, _ = make_context("t")
    config = DriverConfig(id="t", driver="fake.thermometer")
    hub = Hub([Node.create(config, Thermometer(config, ctx))])
    hub.set_state("t", NodeState.ONLINE)
    path = tmp_path / "hubd.sqlite"
    store = Store(path)
    await store.open()
    # The default commit_interval: readings written every five minutes (each one kept).
    # (The readings are of 2026-01-01: kept for ten years, the hourly prune spares them.)
    settings = EventsSettings(history_interval=0, history_sample=0, history_days=3650)
    engine = EventEngine(hub, store, settings)
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    await engine.subscribe(SubscriptionSpec(subscriber="a@x", target="a@x/r", node_id="t", seqnr=1))
    rig = Rig(hub, store, engine, sink, path, task)
    try:
        yield rig
    finally:
        await rig.stop()
        await rig.store.close()


async def test_an_event_acknowledged_at_once_is_never_written(rig: Rig) -> None:
    for i in range(1, 4):
        rig.hub.ingest("t", [value("temperature", Decimal(i), i)])
        await rig.sink.wait(i)
        rig.engine.acked([rig.sink.sent[-1][0]])
    await rig.stop()  # writes everything it holds: nothing of these events
    assert rig.rows("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'") == []
    assert rig.outbox() == []
    # The readings and the reference of the last event were written by close().
    assert rig.readings() == ["1", "2", "3"]
    state = rig.rows("SELECT json_extract(state, '$.reference.temperature[1]') FROM subscriptions")
    assert state == [("3",)]


async def test_an_event_not_acknowledged_is_written_then_removed_once_it_is(rig: Rig) -> None:
    rig.hub.ingest("t", [value("temperature", Decimal("1.5"))])
    await rig.sink.wait(1)
    event_id = rig.sink.sent[0][0]
    # The server says nothing: the event goes to the outbox, to survive a restart.
    await rig.until("SELECT id FROM outbox", [(event_id,)])
    rig.engine.acked([event_id])
    await rig.until("SELECT id FROM outbox", [])


async def test_an_event_for_an_absent_subscriber_is_written_at_once(rig: Rig) -> None:
    # It waits: the hub has taken it on, so a kill -9 must not lose it (it does not
    # stay a minute in memory, as readings do; the commit takes them along).
    rig.sink.reachable = False
    rig.hub.ingest("t", [value("temperature", Decimal("2.5"))])
    await rig.until("SELECT COUNT(*) FROM outbox", [(1,)])
    assert rig.sink.sent == []


async def test_events_for_an_absent_subscriber_are_written_before_a_flush(rig: Rig) -> None:
    rig.sink.reachable = False
    for i in range(1, 4):
        rig.hub.ingest("t", [value("temperature", Decimal(i), i)])
    rig.engine.request_flush("a@x")  # the subscriber is still away: nothing goes out
    await rig.until("SELECT COUNT(*) FROM outbox", [(3,)])
    assert rig.sink.sent == []
    rig.sink.reachable = True
    rig.engine.request_flush("a@x")
    await rig.sink.wait(3)
    assert [e.values[0].value for _, e in rig.sink.sent] == [1, 2, 3]
    assert all(e.delayed for _, e in rig.sink.sent), "they waited: XEP-0203 stamps"


async def test_a_history_read_writes_the_readings_held_in_memory_first(rig: Rig) -> None:
    rig.hub.ingest("t", [value("temperature", Decimal("4"), 4)])
    await rig.sink.wait(1)
    rig.engine.acked([rig.sink.sent[0][0]])
    start = value("temperature", 0, 0).timestamp.timestamp()
    async with asyncio.timeout(10):
        # The engine takes a reading in right after its events went out.
        while not (rows := await rig.store.history("t", [], start, start + 10, 10)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert [r.value["v"] for r in rows] == ["4"]
    # What the reader was shown is on disk (a kill -9 now would keep it).
    assert rig.readings() == ["4"]


async def test_a_stop_writes_the_events_in_flight_for_the_next_start(rig: Rig) -> None:
    rig.hub.ingest("t", [value("temperature", Decimal("9"), 9)])
    await rig.sink.wait(1)  # in flight, not acknowledged: the stop writes it
    await rig.stop()
    await rig.store.close()
    rig.store = Store(rig.path)  # the next start (the fixture closes it)
    await rig.store.open()
    pending = await rig.store.pending("a@x")
    assert [q.event["values"][0]["v"] for q in pending] == ["9"]


def _readings(db: sqlite3.Connection) -> tuple[object, ...]:
    return (
        select_readings(db, "n", "x", 0, 1000, 100),
        select_reading_before(db, "n", "x", 50),
        count_readings(db, "n", "x", 0, 1000),
        select_extremes(db, "n", "x", 0, 100, 4),
    )


def test_merging_the_recent_readings_changes_nothing_a_reader_sees() -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        old = [HistoryRow("n", "x", float(t), {"t": "numeric", "v": str(t)}) for t in range(40)]
        new = [HistoryRow("n", "x", float(t), {"t": "numeric", "v": str(t)}) for t in range(40, 90)]
        other = [HistoryRow("m", "x", float(t), {"t": "numeric", "v": "7"}) for t in range(90)]
        insert_history(db, old)
        insert_recent(db, new + other)
        before = _readings(db)
        assert before[2] == 90, "history and recent both counted"
        assert merge_recent(db) == 140
        assert db.execute("SELECT COUNT(*) FROM recent").fetchone() == (0,)
        assert _readings(db) == before


def test_pruning_deletes_old_readings_from_the_history_and_the_recent_ones() -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        rows = [HistoryRow("n", "x", float(t), {"t": "numeric", "v": str(t)}) for t in range(10)]
        insert_history(db, rows[:5])
        insert_recent(db, rows[5:])
        assert prune_readings(db, 7.0) == 7
        assert [r[0] for r in db.execute(f"SELECT ts FROM {ALL_READINGS} ORDER BY ts")] == [
            7.0,
            8.0,
            9.0,
        ]
