"""tests/install runs only under ``./dev check-arm64`` (minutes of emulation, root).

``./dev test`` leaves it out; ``./dev check-arm64`` sets HUBD_CHECK_ARM64=1.
"""

from __future__ import annotations

import os

if os.environ.get("HUBD_CHECK_ARM64") != "1":
    collect_ignore_glob = ["test_*.py"]
