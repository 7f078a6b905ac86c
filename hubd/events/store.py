"""State that must survive a restart: subscriptions, undelivered events, history.

One SQLite file under ``state_dir``, in WAL mode with ``synchronous=FULL``: a
commit is on the disk when it returns, so neither ``kill -9`` nor a power cut
loses anything committed, and WAL never leaves a half-written database,
whatever happens.  sqlite3 blocks, so every call runs on one worker thread
(SQLite connections are not shared between threads here); the event loop only
awaits the results.  Writes are batched by the callers, to spare the SD card:
the event engine commits every ``events.commit_interval`` (5 minutes) at a
steady load (see ``hubd/events/pending.py``: what waits in memory and what a
crash costs), and readings wait in memory (:meth:`Store.keep_history`) for its
next commit, or for the next read of the history, which writes them first.
Readings are appended to a small table and merged into the indexed history
once there are :data:`MERGE_ROWS` of them (see ``hubd/events/tables.py``).

Faults of a Pi's SD card never stop hubd:

* a damaged file (a cut at a random byte, garbage in its pages) is found at
  start (the small tables are checked whole, the rest with ``PRAGMA
  quick_check`` for at most :data:`QUICK_CHECK_BUDGET`: on a 445 MiB store
  of 30 days of readings of 10 devices the whole check takes 8 s on a PC,
  far more on a Pi), moved aside as ``hubd.sqlite.corrupt-<UTC time>`` with
  its ``-wal``/``-shm`` files, and a fresh store is started.  Damage found
  while running does the same at once: the subscriptions live in memory, so
  the engine writes them again into the fresh file (see :attr:`Store.generation`)
  and only the undelivered events and the history of the old file are lost;
* a full disk (or a read-only or failing one) makes a write raise
  :class:`~hubd.errors.StoreUnavailable` after one WARNING line; the
  transaction is rolled back, so nothing already stored is lost, and the
  first write that succeeds again logs the recovery once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hubd.errors import StoreUnavailable
from hubd.events.clock_steps import shift_history_rows
from hubd.events.state_file import (
    ROOM_TO_RECOVER,
    connect,
    connect_empty,
    connect_read_only,
    is_damaged,
    is_disk_trouble,
    is_full,
    move_aside,
)
from hubd.events.tables import (
    HistoryRow,
    QueuedEvent,
    Reading,
    StoredSubscription,
    count_readings,
    count_recent,
    delete_delivered,
    insert_events,
    insert_history,
    insert_recent,
    max_event_id,
    merge_recent,
    prune_readings,
    save_subscription_rows,
    select_extremes,
    select_history,
    select_pending,
    select_reading_before,
    select_readings,
    select_subscriptions,
    subscription_row,
    update_states,
)

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

#: Readings in the unindexed ``recent`` table that make the next commit merge them
#: into the history (a day and a half of ten sampled numbers; the readers scan it whole).
MERGE_ROWS = 20_000


class Store:
    """The SQLite state file, used from the event loop through one worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubd-store")
        self._db: sqlite3.Connection | None = None
        # True while the file could only be opened for reading (a full disk at start).
        self._read_only = False
        #: Why writes fail now (for the status line), or None while they succeed.
        self.problem: str | None = None
        #: Bumped when a damaged file was replaced by a fresh one while running:
        #: what the old file held must be written again by its owners.
        self.generation = 0
        #: Called on the event loop when :attr:`problem` changes.
        self.listeners: list[Callable[[], None]] = []
        # Readings waiting for the next commit (touched on the event loop only).
        self._kept: list[HistoryRow] = []
        self._recent_rows = 0  # in the recent table (worker thread only)

    async def open(self) -> None:
        """Create or open the database (and its folder); a damaged file is moved aside."""
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as err:
            if is_damaged(err):
                try:
                    self._replace_damaged(err)
                except (sqlite3.Error, OSError) as again:
                    # Cannot even move it (a read-only or full disk): run on in memory,
                    # writing nothing, until a write finds the file usable.
                    self._db = connect_empty()
                    self._read_only = True
                    self._report(again)
            elif is_disk_trouble(err):
                # A full disk at start (no room even for the -shm file): read what is
                # stored, so the subscriptions come back; writing waits for room.
                self._db = connect_read_only(self.path)
                self._read_only = True
                self._report(err)
            else:
                raise

    def _connect(self) -> sqlite3.Connection:
        db = connect(self.path)
        self._recent_rows = count_recent(db)
        return db

    def _replace_damaged(self, err: sqlite3.Error) -> None:
        """Move the damaged file aside and start a fresh one (on the worker thread)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # a damaged file may refuse even this
                self._db.close()
            self._db = None
        aside = move_aside(self.path)
        _LOGGER.warning(
            "the state file %s is damaged (%s): moved it aside to %s and started a fresh one;"
            " lost with it: the event subscriptions, the undelivered events and the history"
            " it held",
            self.path,
            err,
            aside,
        )
        self._db = self._connect()

    async def close(self) -> None:
        """Write the readings kept in memory; close the database and its worker thread."""
        try:
            with contextlib.suppress(StoreUnavailable):  # logged by the store
                await self.write_kept()
            await self._run(self._close)
        finally:
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._db is not None and not self._read_only:
            try:
                # Fold the WAL into the database (and sync it) before leaving.
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as err:
                # A full disk: the WAL keeps what is committed; the next start folds it in.
                _LOGGER.warning("cannot fold the WAL into %s: %s", self.path, err)
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def _guarded(self, fn: Callable[[], T], *, write: bool) -> T:
        """Run ``fn`` on the worker; a full, failing or damaged file raises StoreUnavailable."""
        before = self.problem
        try:
            result = await self._run(lambda: self._call(fn, write))
        finally:
            if self.problem != before:
                for listener in self.listeners:
                    listener()
        return result

    def _has_room(self) -> bool:
        """After a full disk: room for more than a small commit (a nearly full disk
        takes small commits in the WAL's old space and refuses big ones: without
        this margin, the log would flap between full and recovered)."""
        return self.problem != "storage full" or self._free_bytes() >= ROOM_TO_RECOVER

    def _free_bytes(self) -> int:
        try:
            stat = os.statvfs(self.path.parent)
        except OSError:
            return 0
        return stat.f_bavail * stat.f_frsize

    def _call(self, fn: Callable[[], T], write: bool) -> T:
        try:
            if self._db is None or (write and self._read_only):
                # Opened read-only, or replacing a damaged file failed (a full or
                # read-only disk): try the file again before writing.
                db = self._connect()  # a full disk fails before the check: cheap
                if self._db is not None:
                    self._db.close()
                self._db, self._read_only = db, False
            result = fn()
        except (sqlite3.Error, OSError) as err:
            failure: Exception | None = err
            if isinstance(err, sqlite3.Error) and is_damaged(err):
                self.generation += 1
                try:
                    self._replace_damaged(err)
                    failure = None
                except (sqlite3.Error, OSError) as again:
                    failure = again
            if failure is not None:
                self._report(failure)
            raise StoreUnavailable(f"cannot use the state file {self.path}: {err}") from err
        if write and self.problem is not None and self._has_room():
            self.problem = None
            _LOGGER.warning(
                "the state file %s can be written again: history and the offline queue are"
                " stored again",
                self.path,
            )
        return result

    def _report(self, err: Exception) -> None:
        """Log a write failure once (until writes succeed again)."""
        if self.problem is None:
            # A full disk may show as an I/O error (no room for the -shm file).
            full = is_full(err) or self._free_bytes() < ROOM_TO_RECOVER
            self.problem = "storage full" if full else "storage failing"
            _LOGGER.warning(
                "cannot write the state file %s (%s): history and the offline queue are"
                " not stored until it can be written again; live readouts, control and"
                " live events go on",
                self.path,
                err,
            )

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back by itself (a full disk): then there is nothing to undo.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._guarded(lambda: self._transaction(work), write=True)

    async def _read(self, fn: Callable[[], T]) -> T:
        return await self._guarded(fn, write=False)

    # --- subscriptions --------------------------------------------------------

    async def save_subscription(self, sub: StoredSubscription) -> None:
        """Insert or replace the subscription of (subscriber, node)."""
        row = subscription_row(sub)
        await self._write(lambda db: save_subscription_rows(db, [row]))

    async def save_states(
        self, states: Sequence[tuple[str, str, str, str, dict[str, Any]]]
    ) -> None:
        """Update (subscriber, node, channel, target, state) of subscriptions in one commit."""
        if states:
            await self._write(lambda db: update_states(db, states))

    async def delete_subscription(
        self, subscriber: str, node_id: str | None = None, channel: str = "iot"
    ) -> None:
        """Forget one subscription, or all of a subscriber's on a channel (``node_id`` None)."""

        def work(db: sqlite3.Connection) -> None:
            if node_id is None:
                db.execute(
                    "DELETE FROM subscriptions WHERE subscriber = ? AND channel = ?",
                    (subscriber, channel),
                )
            else:
                db.execute(
                    "DELETE FROM subscriptions"
                    " WHERE subscriber = ? AND node_id = ? AND channel = ?",
                    (subscriber, node_id, channel),
                )

        await self._write(work)

    async def subscriptions(self) -> list[StoredSubscription]:
        """Every stored subscription."""

        return await self._read(lambda: select_subscriptions(self._conn()))

    # --- outbox ---------------------------------------------------------------

    async def max_event_id(self) -> int:
        """The highest event id ever used (ids are never reused)."""

        return await self._read(lambda: max_event_id(self._conn()))

    async def waiting_subscribers(self) -> list[str]:
        """Subscribers with undelivered events."""
        return await self._read(
            lambda: [r[0] for r in self._conn().execute("SELECT DISTINCT subscriber FROM outbox")]
        )

    async def enqueue(
        self, items: Sequence[tuple[str, dict[str, Any]]], limit: int
    ) -> list[int | None]:
        """Add events (subscriber, event) in one commit, at most ``limit`` per subscriber; return
        the new ids (None: dropped at once; the oldest beyond the limit: see take_dropped)."""
        return await self._write(
            lambda db: insert_events(db, [(None, s, e) for s, e in items], limit)
        )

    async def commit_batch(
        self,
        *,
        history: Sequence[HistoryRow] = (),
        delivered: Sequence[int] = (),
        states: Sequence[tuple[str, str, str, str, dict[str, Any]]] = (),
        events: Sequence[tuple[int, str, dict[str, Any] | str]] = (),
        limit: int = 1000,
        subscriptions: Sequence[StoredSubscription] = (),
    ) -> list[int | None]:
        """Everything the event engine gathered, in one commit; returns the new events' ids.

        Events come with their ids: the engine numbers them, so it can send one
        before its commit.  Acknowledgements are applied first: the engine takes
        them at the start of a batch, so they are for events of earlier batches,
        already committed, and must not count against the queue limit.
        ``subscriptions`` are written whole first (ones a failed write left unsaved).
        The readings kept in memory (:meth:`keep_history`) go with it; they are
        lost if it fails, as ``history`` is.
        """
        rows = [subscription_row(sub) for sub in subscriptions]
        readings = [*self._kept, *history]
        self._kept = []

        def work(db: sqlite3.Connection) -> list[int | None]:
            save_subscription_rows(db, rows)
            self._add_recent(db, readings)
            delete_delivered(db, delivered)
            update_states(db, states)
            return insert_events(db, events, limit) if events else []

        return await self._write(work)

    async def pending(self, subscriber: str | None = None) -> list[QueuedEvent]:
        """Undelivered events in order (all, or one subscriber's)."""

        return await self._read(lambda: select_pending(self._conn(), subscriber))

    async def delivered(self, ids: Sequence[int]) -> None:
        """Remove events the server has acknowledged."""
        if ids:
            await self._write(lambda db: delete_delivered(db, ids))

    async def drop_subscriber_events(self, subscriber: str) -> None:
        """Forget a subscriber's undelivered events (it unsubscribed)."""
        await self._write(
            lambda db: db.execute("DELETE FROM outbox WHERE subscriber = ?", (subscriber,))
        )

    async def take_dropped(self, subscriber: str) -> int:
        """How many events were dropped for ``subscriber`` since last asked; resets it."""

        def work(db: sqlite3.Connection) -> int:
            row = db.execute(
                "SELECT count FROM dropped WHERE subscriber = ?", (subscriber,)
            ).fetchone()
            db.execute("DELETE FROM dropped WHERE subscriber = ?", (subscriber,))
            return int(row[0]) if row else 0

        return await self._write(work)

    # --- history --------------------------------------------------------------

    async def record(self, rows: Sequence[HistoryRow]) -> None:
        """Keep readings for historical readouts, in one commit, in the indexed history."""
        if rows:
            await self._write(lambda db: insert_history(db, rows))

    @property
    def kept(self) -> bool:
        """Whether readings wait in memory for the next commit."""
        return bool(self._kept)

    def keep_history(self, rows: Sequence[HistoryRow]) -> None:
        """Readings for the next commit (:meth:`commit_batch`, or a read of the history)."""
        self._kept.extend(rows)

    async def write_kept(self) -> None:
        """Write the readings kept in memory now (before the history is read)."""
        if self._kept:
            rows, self._kept = self._kept, []
            await self._write(lambda db: self._add_recent(db, rows))

    def _add_recent(self, db: sqlite3.Connection, rows: Sequence[HistoryRow]) -> None:
        insert_recent(db, rows)
        self._recent_rows += len(rows)
        if self._recent_rows >= MERGE_ROWS:
            merge_recent(db)
            self._recent_rows = 0

    async def _read_history(self, fn: Callable[[], T]) -> T:
        """Read the history, with what was kept in memory written first: what a reader
        was shown is on disk."""
        with contextlib.suppress(StoreUnavailable):  # logged; the rows are lost
            await self.write_kept()
        return await self._read(fn)

    async def history(
        self, node_id: str, fields: Sequence[str], start: float, end: float, limit: int
    ) -> list[HistoryRow]:
        """Stored readings of a node between ``start`` and ``end`` (epoch seconds)."""
        try:
            return await self._read_history(
                lambda: select_history(self._conn(), node_id, fields, start, end, limit)
            )
        except StoreUnavailable:
            # Logged once by the store; a historical readout answers with what it has.
            return []

    async def readings(
        self, node_id: str, field: str, start: float, end: float, limit: int
    ) -> tuple[list[Reading], Reading | None]:
        """One field's readings between ``start`` and ``end`` (oldest first, at most
        ``limit``), and the last one before ``start`` (what it held when the span began);
        raises :class:`~hubd.errors.StoreUnavailable` when the file cannot be read.
        """

        def work() -> tuple[list[Reading], Reading | None]:
            db = self._conn()
            within = select_readings(db, node_id, field, start, end, limit)
            return within, select_reading_before(db, node_id, field, start)

        return await self._read_history(work)

    async def chart_points(
        self, node_id: str, field: str, start: float, end: float, columns: int
    ) -> tuple[int, list[tuple[float, float]] | None]:
        """How many readings of a number lie between ``start`` and ``end``, and, when
        there are more than four per column of a chart ``columns`` wide, the lowest
        and highest of each column (None: few enough to read them all)."""

        def work() -> tuple[int, list[tuple[float, float]] | None]:
            db = self._conn()
            count = count_readings(db, node_id, field, start, end)
            if count <= 4 * columns:
                return count, None
            return count, select_extremes(db, node_id, field, start, end, columns)

        return await self._read_history(work)

    async def prune_history(self, before: float) -> int:
        """Delete the readings older than ``before``; return how many.  (The recent
        ones are merged into the history only when there are many: a merge costs
        about the same per row, plus a few pages for each field.)"""
        rows, self._kept = self._kept, []

        def work(db: sqlite3.Connection) -> int:
            self._add_recent(db, rows)
            return prune_readings(db, before)

        return await self._write(work)

    async def shift_history(self, start: float, end: float, delta: float) -> int:
        """Move readings stamped from ``start`` to ``end`` by ``delta`` s (a clock step);
        the readings kept in memory are written first, so they move too."""
        rows, self._kept = self._kept, []

        def work(db: sqlite3.Connection) -> int:
            self._add_recent(db, rows)
            return shift_history_rows(db, start, end, delta)

        return await self._write(work)
