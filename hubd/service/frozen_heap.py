"""The start-up heap kept out of the collector's full passes, and collected after a reload.

Everything built at start-up (the configuration, slixmpp, the drivers) lives
until exit: :func:`freeze` moves it to the collector's permanent generation,
so that a full pass does not walk all of it in the middle of some event's
path.  But a frozen object is never collected: a reload that removes or
replaces devices of the start-up configuration would leave their nodes,
drivers and supervisors (cyclic through their callbacks) and the old
configuration behind for good.  :func:`collect_frozen` gives them back: one
full pass over the whole heap (about 10 ms on a desktop machine for a small
hub, some ten times that on a Pi Zero 2 W), once per applied reload; then the
heap is frozen again, what the reload built included.
"""

from __future__ import annotations

import gc
import logging
import time

_LOGGER = logging.getLogger(__name__)


def freeze() -> None:
    """Keep what exists now out of the collector's passes."""
    gc.freeze()


def collect_frozen() -> None:
    """Collect what became garbage among frozen objects, then freeze the rest again.

    Does nothing while nothing is frozen (before READY).
    """
    if gc.get_freeze_count() == 0:
        return
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    _LOGGER.debug(
        "collected %d unreachable objects after the reload in %.1f ms",
        found,
        (time.perf_counter() - started) * 1000,
    )
