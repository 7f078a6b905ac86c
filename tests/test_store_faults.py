"""The store on a damaged file and on a full disk (a real tmpfs: needs root, as in CI)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from full_disk import fill, tiny_tmpfs
from test_subscriptions import FakeSink, Thermometer, value

from hubd.core.driver import DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import NodeState
from hubd.core.node import Node
from hubd.core.settings import EventsSettings
from hubd.errors import StoreUnavailable
from hubd.events.engine import EventEngine
from hubd.events.store import Store
from hubd.events.subscriptions import SubscriptionSpec
from hubd.events.tables import HistoryRow, StoredSubscription
from hubd.testing.drivers import make_context


async def _filled_store(path: Path, rows: int = 20_000) -> None:
    """A store of several hundred pages: a subscription, queued events, history."""
    store = Store(path)
    await store.open()
    await store.save_subscription(StoredSubscription("a@x", "n", "a@x/r", {}, {}))
    await store.enqueue([("a@x", {"n": i}) for i in range(50)], limit=1000)
    await store.record(
        [HistoryRow("n", "temperature", float(i), {"v": str(i)}) for i in range(rows)]
    )
    await store.close()


def _aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


async def _assert_replaced(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="hubd.events.store")
    store = Store(path)
    await store.open()
    try:
        # A fresh, working store: nothing of the old one, and it takes writes.
        assert await store.subscriptions() == []
        assert await store.pending() == []
        await store.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        assert [s.subscriber for s in await store.subscriptions()] == ["b@x"]
    finally:
        await store.close()
    aside = _aside(path)
    assert len(aside) == 1, "the damaged file lies beside the new one"
    lines = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(lines) == 1
    assert str(aside[0]) in lines[0]
    assert "subscriptions" in lines[0]
    assert "history" in lines[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_store_cut_at_a_random_byte_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, seed: int
) -> None:
    path = tmp_path / "hubd.sqlite"
    await _filled_store(path)
    size = path.stat().st_size
    cut = random.Random(seed).randrange(1, size - 4096)
    os.truncate(path, cut)
    await _assert_replaced(path, caplog)


async def test_a_store_with_garbage_in_its_middle_pages_is_moved_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hubd.sqlite"
    await _filled_store(path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(random.Random(7).randbytes(8 * 4096))
    await _assert_replaced(path, caplog)


async def test_damage_met_while_running_replaces_the_file_and_keeps_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubd.events.store")
    path = tmp_path / "hubd.sqlite"
    await _filled_store(path)
    store = Store(path)
    await store.open()
    try:
        # Damage the history pages under the running store, then read them.
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2 // 4096 * 4096)
            f.write(b"\xff" * 16 * 4096)
        # A historical readout meets the damage: it answers empty, the file is replaced.
        assert await store.history("n", [], 0.0, 1e9, 100_000) == []
        assert store.generation == 1
        assert len(_aside(path)) == 1
        await store.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        assert [s.subscriber for s in await store.subscriptions()] == ["b@x"]
    finally:
        await store.close()


# --- a full disk ----------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a real full disk."""
    with tiny_tmpfs(tmp_path / "tiny") as mount:
        yield mount


async def test_a_full_disk_keeps_live_events_and_counts_what_it_cannot_keep(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    ctx, _ = make_context("t")
    config = DriverConfig(id="t", driver="fake.thermometer")
    node = Node.create(config, Thermometer(config, ctx))
    hub = Hub([node])
    hub.set_state("t", NodeState.ONLINE)
    store = Store(tiny_disk / "hubd.sqlite")
    await store.open()
    changes: list[str | None] = []
    changed = asyncio.Event()

    def on_change() -> None:
        changes.append(store.problem)
        changed.set()

    store.listeners.append(on_change)
    # commit_interval 0: a commit per batch, so that each reading meets the full disk.
    settings = EventsSettings(history_interval=0, history_days=3650, commit_interval=0)
    engine = EventEngine(hub, store, settings)
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    try:
        await engine.subscribe(
            SubscriptionSpec(subscriber="a@x", target="a@x/r", node_id="t", seqnr=1)
        )
        hub.ingest("t", [value("temperature", Decimal("1"), 1)])
        await sink.wait(1)
        engine.acked([sink.sent[0][0]])
        first_ts = value("temperature", Decimal("1"), 1).timestamp.timestamp()
        async with asyncio.timeout(5):
            # The commit follows the live send: wait until it stored the first reading.
            while not await store.history("t", [], first_ts, first_ts, 10):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        filler = fill(tiny_disk)
        # The WAL reuses its space: write until the disk refuses (big readings fill it fast).
        for i in range(2, 400):
            hub.ingest("t", [value("temperature", Decimal(i), i)])
            await sink.wait(i)
            engine.acked([sink.sent[-1][0]])
            if store.problem is not None:
                break
        assert store.problem == "storage full"
        assert changes == ["storage full"]
        assert not task.done(), "the engine goes on"
        # Offline now: this event can neither go out nor be kept.
        sink.reachable = False
        sent = len(sink.sent)
        hub.ingest("t", [value("temperature", Decimal("-1"), 500)])
        hub.ingest("t", [value("temperature", Decimal("-2"), 501)])
        async with asyncio.timeout(5):
            # The engine has no event for this count: poll it, within the timeout.
            while engine.stats["dropped"] < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert len(sink.sent) == sent
        # Nothing stored before was lost: the subscription, the first reading.
        assert [s.subscriber for s in await store.subscriptions()] == ["a@x"]
        first = await store.history("t", ["temperature"], first_ts, first_ts, 10)
        assert [row.value["v"] for row in first] == ["1"]
        # Space returns: the next event is stored, then delivered with the count.
        filler.unlink()
        changed.clear()
        hub.ingest("t", [value("temperature", Decimal("7"), 600)])
        async with asyncio.timeout(5):
            await changed.wait()
        assert changes == ["storage full", None]
        queued = await store.pending("a@x")
        assert [q.event["values"][0]["v"] for q in queued][-1:] == ["7"]
        sink.reachable = True
        engine.request_flush("a@x")
        await sink.wait(sent + 1)
        event = sink.sent[sent][1]
        assert event.values[0].value == Decimal("7")
        assert event.dropped == 2
        warnings = [r.getMessage() for r in caplog.records if r.name == "hubd.events.store"]
        assert sum("cannot write the state file" in m for m in warnings) == 1
        assert sum("are stored again" in m for m in warnings) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()


async def test_a_write_on_a_full_disk_rolls_back_and_raises(tiny_disk: Path) -> None:
    store = Store(tiny_disk / "hubd.sqlite")
    await store.open()
    try:
        await store.save_subscription(StoredSubscription("a@x", "n", "a@x/r", {}, {}))
        fill(tiny_disk)
        big = [HistoryRow("n", "f", float(i), {"v": "x" * 1000}) for i in range(5000)]
        with pytest.raises(StoreUnavailable):
            await store.record(big)
        assert store.problem == "storage full"
        # Reads still work, and the committed row is still there.
        assert [s.subscriber for s in await store.subscriptions()] == ["a@x"]
    finally:
        await store.close()


async def test_a_start_on_a_full_disk_reads_what_is_stored_and_writes_once_there_is_room(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "hubd.sqlite"
    store = Store(path)
    await store.open()
    await store.save_subscription(StoredSubscription("a@x", "n", "a@x/r", {}, {}))
    await store.close()
    filler = fill(tiny_disk)
    again = Store(path)
    await again.open()  # no room even for the -shm file: opened for reading
    try:
        assert again.problem == "storage full"
        assert [s.subscriber for s in await again.subscriptions()] == ["a@x"]
        with pytest.raises(StoreUnavailable):
            await again.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        filler.unlink()
        await again.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        assert again.problem is None
        assert [s.subscriber for s in await again.subscriptions()] == ["a@x", "b@x"]
    finally:
        await again.close()


async def test_the_engine_writes_its_subscriptions_into_a_store_replaced_while_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hubd.sqlite"
    await _filled_store(path)
    ctx, _ = make_context("t")
    config = DriverConfig(id="t", driver="fake.thermometer")
    hub = Hub([Node.create(config, Thermometer(config, ctx))])
    hub.set_state("t", NodeState.ONLINE)
    store = Store(path)
    await store.open()
    engine = EventEngine(hub, store, EventsSettings(history_days=3650))
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    try:
        await engine.subscribe(
            SubscriptionSpec(subscriber="a@x", target="a@x/r", node_id="t", seqnr=1)
        )
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2 // 4096 * 4096)
            f.write(b"\xff" * 16 * 4096)
        assert await store.history("n", [], 0.0, 1e9, 100_000) == []  # meets the damage
        assert store.generation == 1
        hub.ingest("t", [value("temperature", Decimal("3"), 3)])
        await sink.wait(1)
        async with asyncio.timeout(5):
            # The next commit writes the subscription into the fresh file.
            while not await store.subscriptions():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert [s.subscriber for s in await store.subscriptions()] == ["a@x"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()


async def test_a_damaged_store_on_a_read_only_disk_runs_in_memory_then_is_replaced(
    tiny_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hubd.events.store")
    path = tiny_disk / "hubd.sqlite"
    await _filled_store(path, rows=2_000)
    os.truncate(path, path.stat().st_size // 2)
    await asyncio.to_thread(_remount, tiny_disk, "ro")
    store = Store(path)
    try:
        await store.open()  # cannot move it aside: no exit, nothing written
        assert store.problem == "storage failing"
        assert await store.subscriptions() == []
        await asyncio.to_thread(_remount, tiny_disk, "rw")
        with pytest.raises(StoreUnavailable):  # this write meets the damage: replaced
            await store.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        await store.save_subscription(StoredSubscription("b@x", "n", "b@x/r", {}, {}))
        assert store.problem is None
        assert [s.subscriber for s in await store.subscriptions()] == ["b@x"]
        assert len(_aside(path)) == 1
    finally:
        await asyncio.to_thread(_remount, tiny_disk, "rw")
        await store.close()


def _remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)
