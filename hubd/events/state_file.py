"""The SQLite file itself: is it whole, is there room, and a damaged one moved aside.

The store (``hubd/events/store.py``) asks these questions when it opens the
file and whenever a statement fails: damage means the file is moved aside
(with its ``-wal``/``-shm`` files) and a fresh one started; a full disk means
writes wait until there is room again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hubd.events.tables import SCHEMA

_LOGGER = logging.getLogger(__name__)

#: Seconds the whole-file check may take at start; the small tables are always checked whole.
#: Measured: 8 s for 445 MiB (30 days of 10 devices, 2.6 M readings) from a cold cache on a
#: PC, 0.5 s warm; the tables needed to start take under 1 ms.
QUICK_CHECK_BUDGET = 2.0
#: Free bytes in ``state_dir`` for a full disk to count as recovered (see Store._has_room).
ROOM_TO_RECOVER = 1 << 20
#: The tables hubd needs to start (subscriptions, outbox, ids): cheap to check in full.
_SMALL_TABLES = ("subscriptions", "outbox", "dropped", "sqlite_sequence", "recent")
_DAMAGED_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_FILE_SUFFIXES = ("", "-wal", "-shm")


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the state file, checked (see :func:`quick_check`)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit is on the card when it returns, so a power cut costs
        # only what waits in memory (see hubd/events/pending.py).  Commits are
        # minutes apart, and the kernel writes a dirty page back within 30 s
        # anyway: the sync costs the SD card nothing more.
        db.execute("PRAGMA synchronous=FULL")
        # Debian builds SQLite with secure_delete on: every deleted row and freed
        # page overwritten with zeros, about a sixth of the writes of pruning.
        # FAST zeroes deleted rows only on pages that are written anyway.
        db.execute("PRAGMA secure_delete=FAST")
        # SQLite's own page cache (2 MB by default) only duplicates the kernel's: the
        # working set is the tail of the outbox and of the history.  512 kB keeps the
        # resident memory of a busy hub flat.
        db.execute("PRAGMA cache_size=-512")
        db.executescript(SCHEMA)
        quick_check(db)
    except BaseException:
        db.close()
        raise
    return db


def connect_read_only(path: Path) -> sqlite3.Connection:
    """The file as it is, for reading only (a full disk at start), or an empty store."""
    # immutable: no -shm needed (what only the WAL holds is not seen until writable).
    uri = f"{path.absolute().as_uri()}?immutable=1"
    try:
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error:
        return connect_empty()
    try:
        db.execute("SELECT COUNT(*) FROM subscriptions").fetchone()
    except sqlite3.Error:
        db.close()  # an unclosed connection would linger until the collector finds it
        return connect_empty()
    return db


def connect_empty() -> sqlite3.Connection:
    """An empty store in memory: what hubd runs on when no file can be used."""
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.executescript(SCHEMA)
    return db


class Damaged(sqlite3.DatabaseError):
    """``quick_check`` found damage that no statement reported."""


def _primary_code(err: Exception) -> int | None:
    """SQLite's primary result code of ``err`` (extended codes carry it in the low byte)."""
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_damaged(err: sqlite3.Error) -> bool:
    return isinstance(err, Damaged) or _primary_code(err) in _DAMAGED_CODES


_DISK_TROUBLE_CODES = {
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR,  # an SD card, or no room for the -shm file, may say only this
    sqlite3.SQLITE_CANTOPEN,  # a card the kernel remounted read-only after errors
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PERM,
}


def is_disk_trouble(err: sqlite3.Error) -> bool:
    """The file cannot be written now: full, read-only or failing."""
    return _primary_code(err) in _DISK_TROUBLE_CODES


def is_full(err: Exception) -> bool:
    return _primary_code(err) == sqlite3.SQLITE_FULL


def quick_check(db: sqlite3.Connection) -> None:
    """Raise Damaged when SQLite's quick check finds damage.

    The tables needed to start are checked whole; the whole file (mostly
    history) for at most QUICK_CHECK_BUDGET seconds, so a big store never
    holds the start back: damage in the rest is caught when a read meets it.
    """
    for table in _SMALL_TABLES:
        _check_result(db.execute(f"PRAGMA quick_check({table})").fetchall())
    # One statement does the whole check (a progress handler is never called inside
    # it): interrupt it from a timer thread, joined before this returns.
    timer = threading.Timer(QUICK_CHECK_BUDGET, db.interrupt)
    timer.start()
    try:
        _check_result(db.execute("PRAGMA quick_check").fetchall())
    except sqlite3.OperationalError as err:
        if "interrupt" not in str(err):
            raise
        _LOGGER.debug(
            "quick check stopped after %g s: the rest is checked as it is read", QUICK_CHECK_BUDGET
        )
    finally:
        timer.cancel()
        timer.join()


def _check_result(rows: list[Any]) -> None:
    if rows != [("ok",)]:
        raise Damaged("; ".join(str(r[0]) for r in rows[:3]))


def move_aside(path: Path) -> Path:
    """Rename ``path`` and its -wal/-shm files to ``<name>.corrupt-<UTC time>``; return it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    serial = 1
    while aside.exists():  # twice within a second: never overwrite an earlier one
        serial += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{serial}")
    for suffix in _FILE_SUFFIXES:
        old = path.with_name(path.name + suffix)
        if old.exists():
            old.rename(aside.with_name(aside.name + suffix))
    return aside
