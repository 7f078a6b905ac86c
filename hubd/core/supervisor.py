"""One supervisor per node: start the driver, poll it, restart it when its hardware goes away.

A driver failure never takes the hub down: the node goes offline (logged once),
and the supervisor retries with exponential backoff until the hardware answers
again.
"""

from __future__ import annotations

import asyncio
import logging

from hubd.core.backoff import Backoff
from hubd.core.hub import Hub
from hubd.core.model import NodeState
from hubd.core.node import Node
from hubd.errors import DriverError

_LOGGER = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


class NodeSupervisor:
    """Keeps one node's driver running for as long as the hub runs."""

    __slots__ = ("__weakref__", "_lost", "backoff", "hub", "node")  # one per device

    def __init__(self, hub: Hub, node: Node, backoff: Backoff | None = None) -> None:
        self.hub = hub
        self.node = node
        self.backoff = backoff or Backoff(base=1.0, cap=300.0)
        # Why the hardware went away, for the current start only: a future per start
        # costs less than an Event (and its reason) kept for every device.
        self._lost: asyncio.Future[str] | None = None

    def report_available(self, available: bool, reason: str | None) -> None:
        """Driver callback (event-loop thread): the hardware left or came back."""
        if available:
            if self.node.state is not NodeState.STARTING:
                self.hub.set_state(self.node.id, NodeState.ONLINE)
        else:
            lost = self._lost
            # Before the first start or after a loss already reported: nothing to tell.
            if lost is not None and not lost.done():
                lost.set_result(reason or "device went away")

    async def run(self) -> None:
        """Start, watch and restart the driver until cancelled."""
        try:
            while True:
                if await self._start():
                    self.backoff.reset()
                    reason = await self._watch()
                    self.hub.set_state(self.node.id, NodeState.OFFLINE, reason)
                    await self._stop()
                await asyncio.sleep(self.backoff.next_delay())
        finally:
            await self._stop()

    async def _start(self) -> bool:
        node = self.node
        self._lost = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await node.driver.start()
        except DriverError as err:
            self.hub.set_state(node.id, NodeState.OFFLINE, str(err))
        except TimeoutError:
            self.hub.set_state(node.id, NodeState.OFFLINE, "start timed out")
        except Exception as err:
            # A bug in a driver must not take the hub down; say it once, loudly.
            if node.state is not NodeState.ERROR:
                _LOGGER.exception("driver %s of node %s failed to start", node.kind, node.id)
            self.hub.set_state(node.id, NodeState.ERROR, f"driver error: {err}")
        else:
            self.hub.set_state(node.id, NodeState.ONLINE)
            return True
        await self._stop()
        return False

    async def _watch(self) -> str:
        """Poll (if the driver asks for it) until the hardware is lost; return why."""
        lost = self._lost
        assert lost is not None, "watched before a start"
        interval = self.node.driver.poll_interval
        if interval is None:
            # Nothing to poll: wait on the future itself, without a helper task per node.
            return await lost
        while True:
            # asyncio.wait does not cancel the future when the timeout ends the wait.
            done, _ = await asyncio.wait({lost}, timeout=interval)
            if done:
                return lost.result()
            try:
                await self.hub.read(self.node.id)
            except DriverError as err:
                return str(err)

    async def _stop(self) -> None:
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.node.driver.stop()
        except TimeoutError:
            _LOGGER.warning(
                "driver of node %s did not stop within %s s", self.node.id, STOP_TIMEOUT
            )
        except Exception:
            _LOGGER.exception("driver of node %s failed to stop", self.node.id)
