"""hubd/service/frozen_heap.py: what a reload replaces is collected, though the heap was frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.core.config import load_config
from hubd.core.model import NodeState
from hubd.service import frozen_heap
from hubd.service.app import App

CONFIG = (
    "xmpp: {jid: hub@example.org, password_file: pw}\n"
    "gpio: {pin_factory: mock}\n"
    "devices:\n"
    "  - {id: porch-light, driver: gpio.output, pin: 17}\n"
)
DOOR = "  - {id: door, driver: gpio.input, pin: 5}\n"


class Cycle:
    """An object kept alive only by a reference cycle (as a node and its driver are)."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session runs with the collector as usual


def test_nothing_frozen_nothing_done(unfrozen_after: None) -> None:
    gc.unfreeze()
    frozen_heap.collect_frozen()
    assert gc.get_freeze_count() == 0, "before READY the heap stays as it is"


def test_a_frozen_cycle_dropped_later_is_collected(unfrozen_after: None) -> None:
    cycle = Cycle()
    ref = weakref.ref(cycle)
    frozen_heap.freeze()
    del cycle
    gc.collect()
    assert ref() is not None, "a frozen object is out of the collector's reach"
    frozen_heap.collect_frozen()
    assert ref() is None
    assert gc.get_freeze_count() > 0, "the rest is frozen again"


async def test_a_reload_frees_the_devices_it_removed(tmp_path: Path, unfrozen_after: None) -> None:
    (tmp_path / "pw").write_text("x\n")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + DOOR)
    app = App(load_config(path, environ={}))
    async with asyncio.TaskGroup() as group:
        app._group = group  # as App.run owns the node tasks
        for node_id in app.supervisors:
            app._start_supervisor(app.supervisors[node_id])
        async with asyncio.timeout(10):
            while any(n.state is NodeState.STARTING for n in app.hub.nodes.values()):
                app._node_state_changed.clear()
                await app._node_state_changed.wait()
        door = weakref.ref(app.hub.nodes["door"])
        door_supervisor = weakref.ref(app.supervisors["door"])
        frozen_heap.freeze()  # as at READY
        path.write_text(CONFIG)
        assert await app.reload()
        assert "door" not in app.hub.nodes
        gc.collect()
        assert door() is None, "the removed node is not kept by the frozen heap"
        assert door_supervisor() is None
        for task in app._node_tasks.values():
            task.cancel()
