"""The hub's OMEMO keys and sessions: one SQLite file in ``state_dir``, mode 0600.

``python-omemo`` keeps everything as JSON values under string keys (the
identity key under ``/ikp/...``, the device id under ``/own_device_id``, the
sessions, the pre keys, the trust of each device).  They live in
``omemo.sqlite`` as one row each: WAL mode with ``synchronous=NORMAL``, so a
write is in the operating system's hands when it returns and ``kill -9``
loses nothing written (a power cut may lose the last moments, never the
file).  All rows are read into memory once at start (a few hundred small
values); every change is written through on one worker thread, so the event
loop never blocks on the disk and the writes keep their order.

The identity key is never replaced by hubd itself: only deleting this file
(and so every person's trust in the hub) does that.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xeddsa
from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import JSONType

from hubd.errors import OmemoUnavailable

STORE_FILE = "omemo.sqlite"
_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_IDENTITY_KEY = "/ikp/key"
_IS_SEED = "/ikp/is_seed"


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 before SQLite opens it: the identity key must never be readable by others.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_SCHEMA)
    return db


class OmemoStore(Storage):
    """python-omemo's storage on one SQLite file (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        # Our own dict is the cache: the library's would hold a second copy of everything.
        super().__init__(disable_cache=True)
        self.path = path
        self._data: dict[str, JSONType] = {}
        self._db: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubd-omemo")

    async def open(self) -> None:
        """Open (or create) the file and read every row; raises OmemoUnavailable."""
        loop = asyncio.get_running_loop()
        try:
            self._db, self._data = await loop.run_in_executor(self._executor, self._open)
        except (OSError, sqlite3.Error, ValueError) as err:
            raise OmemoUnavailable(f"cannot open {self.path}: {err}") from err

    def _open(self) -> tuple[sqlite3.Connection, dict[str, JSONType]]:
        db = _connect(self.path)
        rows = db.execute("SELECT key, value FROM kv").fetchall()
        for pending in (f"{self.path}-wal", f"{self.path}-shm"):
            if os.path.exists(pending):
                os.chmod(pending, 0o600)
        return db, {key: json.loads(value) for key, value in rows}

    async def close(self) -> None:
        """Close the file (idempotent)."""
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        assert self._db is not None, "the OMEMO store is not open"
        self._db.execute(sql, args)

    async def _run(self, sql: str, *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write, sql, args)

    # Storage
    async def _load(self, key: str) -> Maybe[JSONType]:
        if key in self._data:
            return Just(self._data[key])
        return Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self._data[key] = value
        await self._run(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            key,
            json.dumps(value, separators=(",", ":")),
        )

    async def _delete(self, key: str) -> None:
        self._data.pop(key, None)
        await self._run("DELETE FROM kv WHERE key = ?", key)


def stored_identity_key(state_dir: Path) -> bytes | None:
    """The hub's public identity key (Ed25519) from ``state_dir``, without changing anything.

    None when hubd has not made its OMEMO identity yet.  For ``hubd omemo
    fingerprint``, which may run while hubd does (WAL readers never block it).
    """
    path = state_dir / STORE_FILE
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = dict(
                db.execute(
                    "SELECT key, value FROM kv WHERE key IN (?, ?)", (_IDENTITY_KEY, _IS_SEED)
                ).fetchall()
            )
        finally:
            db.close()
    except sqlite3.Error as err:
        raise OmemoUnavailable(f"cannot read {path}: {err}") from err
    if _IDENTITY_KEY not in rows:
        return None
    key = base64.urlsafe_b64decode(json.loads(rows[_IDENTITY_KEY]))
    if json.loads(rows.get(_IS_SEED, "true")):
        return bytes(xeddsa.seed_to_ed25519_pub(key))
    return bytes(xeddsa.priv_to_ed25519_pub(key))


def fingerprint(identity_key: bytes) -> str:
    """The fingerprint clients show: the Curve25519 form in hex, eight groups of eight."""
    text = bytes(xeddsa.ed25519_pub_to_curve25519_pub(identity_key)).hex()
    return " ".join(text[i : i + 8] for i in range(0, len(text), 8))


def normalise_fingerprint(text: str) -> str:
    """A fingerprint as typed or pasted (spaces, dashes, colons, a leading 05) as 64 hex digits."""
    digits = "".join(ch for ch in text.lower() if ch in "0123456789abcdef")
    return digits[2:] if len(digits) == 66 and digits.startswith("05") else digits
