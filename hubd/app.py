"""The composition root: build the hub from the config, run everything under one TaskGroup.

Start-up order: drivers are instantiated (lazily imported through the
registry), node supervisors start them, and the XMPP client connects.  SIGTERM
and SIGINT stop cleanly: presence unavailable, stream closed, drivers stopped,
shared backends closed.  Only a configuration error or a refused password is
fatal; everything else is retried.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence

from hubd.access import AccessPolicy
from hubd.config import Config
from hubd.driver import DriverConfig, DriverContext
from hubd.errors import XmppAuthError
from hubd.hub import Hub
from hubd.model import FieldValue
from hubd.node import Node
from hubd.registry import DriverRegistry
from hubd.resources import SharedResources
from hubd.supervisor import NodeSupervisor
from hubd.xmpp.client import HubClient

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus= keeps it from looping


class _Stop(Exception):
    """Raised inside the TaskGroup to end it after a clean shutdown."""


class App:
    """hubd as one running process."""

    def __init__(self, config: Config, registry: DriverRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or DriverRegistry()
        self.resources = SharedResources()
        self.hub = Hub(())
        self.access = AccessPolicy(
            config.access.owners, config.access.controllers, config.access.readers
        )
        self.supervisors: list[NodeSupervisor] = []
        self.stop_event = asyncio.Event()
        for device in config.devices:
            self._add_node(device.id, device)

    def _add_node(self, node_id: str, device: DriverConfig) -> None:
        driver_cls = self.registry.load(device.driver)
        loop = asyncio.get_running_loop()
        supervisor_slot: list[NodeSupervisor] = []

        def publish(values: Sequence[FieldValue]) -> None:
            self.hub.ingest(node_id, values)

        def publish_threadsafe(values: Sequence[FieldValue]) -> None:
            loop.call_soon_threadsafe(self.hub.ingest, node_id, values)

        def set_available(available: bool, reason: str | None) -> None:
            supervisor_slot[0].report_available(available, reason)

        ctx = DriverContext(
            node_id=node_id,
            logger=logging.getLogger(f"hubd.node.{node_id}"),
            settings=self.config.bus,
            resources=self.resources,
            publish=publish,
            publish_threadsafe=publish_threadsafe,
            set_available=set_available,
        )
        node = Node.create(device, driver_cls(device, ctx))
        self.hub.nodes[node_id] = node
        supervisor = NodeSupervisor(self.hub, node)
        supervisor_slot.append(supervisor)
        self.supervisors.append(supervisor)

    async def run(self) -> int:
        """Run until a signal asks to stop; return the process exit status."""
        client = HubClient(
            self.config.xmpp,
            self.config.password.get_secret_value(),
            self.hub,
            self.access,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        _LOGGER.info(
            "hubd starting: %d device(s), account %s", len(self.hub.nodes), self.config.xmpp.jid
        )
        status = EXIT_OK
        try:
            async with asyncio.TaskGroup() as group:
                for supervisor in self.supervisors:
                    group.create_task(supervisor.run(), name=f"node {supervisor.node.id}")
                group.create_task(client.run(), name="xmpp")
                group.create_task(self._wait_for_stop(client), name="stop")
        except* _Stop:
            pass
        except* XmppAuthError as group_error:
            for err in group_error.exceptions:
                _LOGGER.error("cannot log in: %s; check xmpp.jid and the password", err)
            status = EXIT_CONFIG
            await client.close()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.resources.close_all()
        _LOGGER.info("hubd stopped")
        return status

    async def _wait_for_stop(self, client: HubClient) -> None:
        await self.stop_event.wait()
        _LOGGER.info("stopping")
        await client.close()
        raise _Stop
