"""A real full disk for the storage-fault tests: a tiny tmpfs, and a file that fills it.

Mounting needs root; CI runs as root, so there a missing right fails the test
instead of skipping it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tiny_tmpfs(mount: Path, size: str = "2m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs on ``mount`` (created if missing) for the block."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the full-disk tests need root (mount -t tmpfs); CI runs as root")
        pytest.skip("needs root to mount a tmpfs")
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Write a file until ``disk`` has no room left; return it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass  # ENOSPC: full
    return filler
