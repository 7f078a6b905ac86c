"""What hubd's periodic upkeep of the store writes, per hour (a part of bench/wear.py).

Run by wear.py as a process of its own on a copy of the state file its hubd
left (closed, the WAL folded in), so that ``write_bytes`` of ``/proc/self/io``
counts this work alone, with hubd's own connection settings and SQL:

* merging ``recent`` into the indexed history (hubd does it once ``recent``
  holds ``MERGE_ROWS`` readings): the rows are put in first, written and synced
  (not counted), then the merge is counted;
* pruning (every ``PRUNE_EVERY``): the readings of that long at the oldest end;
* a WAL checkpoint of what these two wrote (the bytes a checkpoint writes per
  byte of WAL: wear.py scales it to the WAL hubd writes in an hour).

Prints one JSON object.  Usage: python bench/wear_upkeep.py STATE_FILE ROWS_PER_HOUR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hubd.events.engine import PRUNE_EVERY
from hubd.events.state_file import connect
from hubd.events.store import MERGE_ROWS
from hubd.events.tables import merge_recent, prune_readings


def written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split(":")[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def main() -> int:
    path, rows_per_hour = Path(sys.argv[1]), float(sys.argv[2])
    db = connect(path)  # as hubd opens it (with its start-up check)
    wal = Path(f"{path}-wal")
    now = time.time()
    readings = [
        (f"d{n % 10}", "v", now + n, json.dumps({"t": "numeric", "v": str(n)}))
        for n in range(MERGE_ROWS)
    ]
    db.execute("BEGIN")
    db.executemany("INSERT INTO recent VALUES (?, ?, ?, ?)", readings)
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    before = written()
    db.execute("BEGIN")
    merge_recent(db)
    db.execute("COMMIT")
    merged = written()
    (oldest,) = db.execute("SELECT MIN(ts) FROM history").fetchone()
    hours = PRUNE_EVERY.total_seconds() / 3600
    db.execute("BEGIN")
    pruned_rows = prune_readings(db, oldest + hours * 3600)
    db.execute("COMMIT")
    pruned = written()
    wal_bytes = wal.stat().st_size
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    checkpointed = written()
    db.close()
    merges_per_hour = rows_per_hour / MERGE_ROWS
    result = {
        "merge_rows": MERGE_ROWS,
        "merge_bytes": merged - before,
        "merge_per_hour": (merged - before) * merges_per_hour,
        "prune_every_hours": hours,
        "pruned_rows": pruned_rows,
        "prune_bytes": pruned - merged,
        "prune_per_hour": (pruned - merged) / hours,
        "wal_bytes": wal_bytes,
        "checkpoint_bytes": checkpointed - pruned,
        "checkpoint_per_wal_byte": (checkpointed - pruned) / max(wal_bytes, 1),
        # WAL bytes this upkeep appends per hour (to add to hubd's own).
        "wal_per_hour": wal_bytes * (merged - before) / max(pruned - before, 1) * merges_per_hour
        + wal_bytes * (pruned - merged) / max(pruned - before, 1) / hours,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
