"""The composition root: build the hub from the config, run everything under one TaskGroup.

Start-up order: drivers are instantiated (lazily imported through the
registry), node supervisors start them, and the XMPP client connects.  SIGTERM
and SIGINT stop cleanly: presence unavailable, stream closed, drivers stopped,
shared backends closed.  Only a configuration error or a refused password is
fatal; everything else is retried.

Under systemd (``Type=notify``) the app reports ``READY=1`` once the node
supervisors run and the first connection attempt is under way (a Pi offline
at boot still becomes ready), a ``STATUS=`` line on every change of the
connection or the node table, ``WATCHDOG=1`` while healthy and
``STOPPING=1`` when shutdown begins.  SIGHUP reloads the configuration: see
:meth:`App.reload`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import signal
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hubd.core.access import AccessPolicy
from hubd.core.backoff import Backoff
from hubd.core.config import Config, MetricsSettings, load_config
from hubd.core.driver import DriverConfig, DriverContext
from hubd.core.hub import Hub
from hubd.core.memory import FileMemory
from hubd.core.model import FieldValue, NodeState
from hubd.core.node import Node
from hubd.core.registry import DriverRegistry
from hubd.core.remote_nodes import RemoteNodeTable
from hubd.core.resources import SharedResources
from hubd.core.supervisor import START_TIMEOUT, STOP_TIMEOUT, NodeSupervisor
from hubd.errors import ConfigError, XmppAuthError
from hubd.events.engine import EventEngine
from hubd.events.store import Store
from hubd.service import frozen_heap
from hubd.service.metrics import MetricsRegistry, MetricsServer
from hubd.service.reload import access_changed, diff_devices, needs_restart
from hubd.service.sdnotify import Notifier
from hubd.xmpp.client import HubClient

if TYPE_CHECKING:  # imported by compose() when the configuration turns them on
    from hubd.core.ownership import Ownership
    from hubd.xmpp.pubsub import PubSubPublisher

_LOGGER = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIG = 78  # EX_CONFIG: systemd's RestartPreventExitStatus= keeps it from looping
STATE_FILE = "hubd.sqlite"

# READY=1 waits for every driver's first start attempt, but never longer than this:
# systemd's start timeout must not be what ends a slow start.
READY_TIMEOUT = START_TIMEOUT + 5.0
# A removed device's supervisor stops its driver within STOP_TIMEOUT; allow a margin.
NODE_STOP_TIMEOUT = STOP_TIMEOUT + 5.0
RELOAD_READ_TIMEOUT = 30.0
# One generator for every node's restart jitter: a Random() each costs 2.5 kB per device.
_RNG = random.Random()


class _NodeLink:
    """What one driver calls back into: its values to the hub, its availability to its
    supervisor.  One small object per device instead of a closure per callback."""

    __slots__ = ("hub", "loop", "node", "node_id", "supervisor")

    def __init__(self, hub: Hub, node_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = hub
        self.node_id = node_id
        self.loop = loop
        self.node: Node | None = None
        self.supervisor: NodeSupervisor | None = None

    def ingest(self, values: Sequence[FieldValue]) -> None:
        # After a reload replaced this device, a late value of the old driver must
        # not land on the new node of the same id.
        node = self.node
        if node is not None and self.hub.nodes.get(self.node_id) is node:
            self.hub.ingest(self.node_id, values)

    def ingest_threadsafe(self, values: Sequence[FieldValue]) -> None:
        self.loop.call_soon_threadsafe(self.ingest, values)

    def set_available(self, available: bool, reason: str | None) -> None:
        assert self.supervisor is not None, "a driver reported before its supervisor existed"
        self.supervisor.report_available(available, reason)


class _Stop(Exception):
    """Raised inside the TaskGroup to end it after a clean shutdown."""


class App:
    """hubd as one running process."""

    def __init__(self, config: Config, registry: DriverRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or DriverRegistry()
        self.resources = SharedResources()
        self.hub = Hub(())
        self.access = AccessPolicy.from_config(config)
        # Bus settings are read once: drivers added by a reload share the running backends.
        self._bus = config.bus
        self.supervisors: dict[str, NodeSupervisor] = {}
        self.stop_event = asyncio.Event()
        self.reload_event = asyncio.Event()
        self.notifier = Notifier()
        self.client: HubClient | None = None
        self.pubsub: PubSubPublisher | None = None
        self._group: asyncio.TaskGroup | None = None
        self._node_tasks: dict[str, asyncio.Task[None]] = {}
        self._essential: list[asyncio.Task[None]] = []
        self._node_state_changed = asyncio.Event()
        self._down: set[str] = set()
        self._ready = False
        self._stopping = False
        self._last_status: str | None = None
        self.store: Store | None = None
        self.metrics = MetricsRegistry()
        self._driver_errors = self.metrics.counter(
            "hubd_driver_errors_total", "Times a device went offline or failed (driver errors)."
        )
        self._values = self.metrics.counter(
            "hubd_values_total", "Values published by the devices' drivers."
        )
        self.metrics.gauge(
            "hubd_xmpp_connected", "1 while the XMPP session is up.", self._connected_metric
        )
        self.metrics.gauge("hubd_devices", "Configured devices.", lambda: self.hub.counts()[0])
        self.metrics.gauge(
            "hubd_devices_offline", "Devices not online.", lambda: self.hub.counts()[1]
        )
        self.hub.add_listener(self)
        for device in config.devices:
            self._add_node(device.id, device)

    def _add_node(self, node_id: str, device: DriverConfig) -> NodeSupervisor:
        driver_cls = self.registry.load(device.driver)
        link = _NodeLink(self.hub, node_id, asyncio.get_running_loop())
        ctx = DriverContext(
            node_id=node_id,
            logger=logging.getLogger(f"hubd.node.{node_id}"),
            settings=self._bus,
            resources=self.resources,
            publish=link.ingest,
            publish_threadsafe=link.ingest_threadsafe,
            set_available=link.set_available,
            memory=FileMemory(self.config.state_dir / "nodes" / f"{node_id}.json"),
        )
        node = Node.create(device, driver_cls(device, ctx))
        link.node = node
        self.hub.add_node(node)
        supervisor = NodeSupervisor(self.hub, node, Backoff(base=1.0, cap=300.0, rng=_RNG))
        link.supervisor = supervisor
        self.supervisors[node_id] = supervisor
        return supervisor

    def _start_supervisor(self, supervisor: NodeSupervisor) -> None:
        # Owned by the app's TaskGroup, like every long-lived task; a reload cancels it.
        assert self._group is not None
        node_id = supervisor.node.id
        self._node_tasks[node_id] = self._group.create_task(
            supervisor.run(), name=f"node {node_id}"
        )

    async def compose(self) -> HubClient | None:
        """Open the state and build the services the configuration turns on.

        This is where the optional features are imported (PubSub, remotes, the
        thing registry, provisioning, MUC, OMEMO): a hub that does not use them
        does not pay their modules' memory.  None: the state cannot be opened.
        """
        store = Store(self.config.state_dir / STATE_FILE)
        try:
            await store.open()
        except (OSError, sqlite3.Error) as problem:
            _LOGGER.error("cannot open the state in %s: %s", self.config.state_dir, problem)
            await store.close()
            return None
        # A full disk shows on the status line (the store logs it once).
        self.store = store
        store.listeners.append(self._update_status)
        # Other hubs' nodes (remotes:) take subscriptions here too, through proxies.
        remote_nodes = RemoteNodeTable([r.id for r in self.config.remotes])
        self.events = EventEngine(self.hub, store, self.config.events, remote_nodes=remote_nodes)
        remote_nodes.listeners.append(self.events.on_values)
        await self.events.load()
        ownership: Ownership | None = None
        if self.config.discovery is not None:
            from hubd.core.ownership import load_ownership

            # The registry key and the owner a registry named (XEP-0347), kept in state_dir.
            ownership = await asyncio.to_thread(load_ownership, self.config.state_dir)
        client = HubClient(
            self.config.xmpp,
            self.config.password.get_secret_value(),
            self.hub,
            self.access,
            events=self.events,
            rooms=self.config.rooms,
            uploads=self.config.uploads,
            discovery=self.config.discovery,
            state_dir=self.config.state_dir,
            ownership=ownership,
            omemo=self.config.omemo,
            remotes=self.config.remotes,
            remote_nodes=remote_nodes,
        )
        self.client = client
        if self.config.pubsub is not None:
            from hubd.xmpp.pubsub import PubSubPublisher

            self.pubsub = PubSubPublisher(client.xmpp, self.hub, self.access, self.config)
        return client

    async def run(self) -> int:
        """Run until a signal asks to stop; return the process exit status."""
        client = await self.compose()
        if client is None:
            return EXIT_CONFIG
        store = self.events.store
        client.connection.state_listeners.append(lambda _connected: self._update_status())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_event.set)
        _LOGGER.info(
            "hubd starting: %d device(s), account %s", len(self.hub.nodes), self.config.xmpp.jid
        )
        status = EXIT_OK
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for supervisor in self.supervisors.values():
                    self._start_supervisor(supervisor)
                self._essential = [
                    group.create_task(client.run(), name="xmpp"),
                    group.create_task(self.events.run(), name="events"),
                    group.create_task(self._wait_for_stop(client), name="stop"),
                    group.create_task(self._reload_loop(), name="reload"),
                ]
                if self.config.metrics is not None:
                    group.create_task(self._serve_metrics(self.config.metrics), name="metrics")
                # Created after the xmpp task, so its first step (the first connection
                # attempt) has run when this one starts.
                group.create_task(self._announce_ready(), name="systemd")
        except* _Stop:
            pass
        except* XmppAuthError as group_error:
            for err in group_error.exceptions:
                _LOGGER.error("cannot log in: %s; check xmpp.jid and the password", err)
                self.notifier.status(f"cannot log in: {err}")
            status = EXIT_CONFIG
            await client.close()
        finally:
            self._group = None
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if not self._stopping:
                self._stopping = True
                self.notifier.stopping()
            await self.resources.close_all()
            # What the engine holds in memory (readings, events in flight): written now.
            await self.events.close()
            await store.close()
            self.notifier.close()
        _LOGGER.info("hubd stopped")
        return status

    async def _wait_for_stop(self, client: HubClient) -> None:
        await self.stop_event.wait()
        _LOGGER.info("stopping")
        self._stopping = True
        self.notifier.stopping("stopping")
        if self.pubsub is not None:
            await self.pubsub.close()
        await client.close()
        raise _Stop

    # systemd: READY, STATUS, WATCHDOG
    async def _announce_ready(self) -> None:
        """Tell systemd hubd is up once every driver had its first start attempt."""
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while any(n.state is NodeState.STARTING for n in self.hub.nodes.values()):
                    self._node_state_changed.clear()
                    await self._node_state_changed.wait()
        except TimeoutError:
            starting = [n.id for n in self.hub.nodes.values() if n.state is NodeState.STARTING]
            _LOGGER.warning("still starting after %g s: %s", READY_TIMEOUT, ", ".join(starting))
        self._ready = True
        # Everything built at start-up lives until exit: out of the collector's passes.
        frozen_heap.freeze()
        self._last_status = self.status_text()
        self.notifier.ready(self._last_status)
        _LOGGER.debug("ready: %s", self._last_status)
        interval = self.notifier.watchdog_interval
        if interval is not None:
            await self._watchdog(interval / 2)

    def status_text(self) -> str:
        """The line ``systemctl status hubd`` shows: ``connected, 12 devices, 1 offline``."""
        total, offline = self.hub.counts()
        devices = f"{total} device{'s' if total != 1 else ''}"
        if offline:
            devices += f", {offline} offline"
        if self.store is not None and self.store.problem is not None:
            devices += f"; {self.store.problem}: history and offline queue not stored"
        if self.client is not None and self.client.connection.connected.is_set():
            return f"connected, {devices}"
        return f"connecting... {devices}"

    def _update_status(self) -> None:
        # Runs on every node-state or connection change: a datagram only when the text changed.
        if not self._ready or self._stopping:
            return
        text = self.status_text()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    async def _watchdog(self, period: float) -> None:
        """Send WATCHDOG=1 every ``period`` seconds while :meth:`health_problem` finds none.

        An unreachable XMPP server is not a problem here: restarting cannot fix
        it, and hubd retries by itself.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += period
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            late = loop.time() - deadline
            problem = self.health_problem(late, period)
            if problem is None:
                self.notifier.watchdog()
                continue
            _LOGGER.warning("not pinging the systemd watchdog: %s", problem)
            deadline = loop.time()  # start the schedule again from now

    def health_problem(self, late: float, period: float) -> str | None:
        """Why hubd is not healthy, or None.

        Healthy means: the event loop ran the ping task on time (a loop blocked
        for a whole ping period is not responsive), and the TaskGroup's tasks
        are alive (the XMPP supervisor, the stop and reload handlers, every
        node supervisor: they only end when hubd stops).
        """
        if late >= period:
            return f"the event loop was blocked for {late:.1f} s"
        for task in (*self._essential, *self._node_tasks.values()):
            if task.done():
                return f"task {task.get_name()!r} has ended"
        return None

    # HubListener: metrics and the status line
    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """Count the values drivers publish (the synthetic ``online`` field excluded)."""
        count = len(values)  # a loop, not a generator: this runs before every event
        for value in values:
            if value.name == "online":
                count -= 1
        self._values.inc(count)

    def on_state(self, node: Node) -> None:
        """Count transitions to offline/error; refresh the status line."""
        if node.online:
            self._down.discard(node.id)
        elif node.state is not NodeState.STARTING and node.id not in self._down:
            self._down.add(node.id)
            self._driver_errors.inc()
        self._node_state_changed.set()
        self._update_status()

    def _connected_metric(self) -> float:
        connected = self.client is not None and self.client.connection.connected.is_set()
        return 1.0 if connected else 0.0

    async def _serve_metrics(self, settings: MetricsSettings) -> None:
        server = MetricsServer(self.metrics, settings.host, settings.port)
        try:
            await server.start()
        except OSError as err:
            # Metrics are an extra: a taken port must not stop the hub itself.
            _LOGGER.error(
                "metrics: cannot listen on %s: %s; running without metrics",
                settings.listen,
                err.strerror or err,
            )
            return
        await server.serve()

    # SIGHUP: reload
    async def _reload_loop(self) -> None:
        while True:
            await self.reload_event.wait()
            self.reload_event.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Re-read the configuration file and apply it without dropping the XMPP session.

        An invalid file is refused, each problem logged, and the running
        configuration kept.  Devices are compared by id: removed ones are
        stopped, added ones started, changed ones restarted; the access lists
        are replaced in place.  Other changes need a restart and are reported.
        Return True when the new file was applied.
        """
        # Before READY=1 a reload must not announce readiness early: then it stays silent.
        announce = self._ready and not self._stopping
        if announce:
            self.notifier.reloading()
        try:
            return await self._reload()
        finally:
            if announce:
                self.notifier.ready(self.status_text())

    async def _reload(self) -> bool:
        path = self.config.path
        _LOGGER.info("reloading %s", path)
        try:
            async with asyncio.timeout(RELOAD_READ_TIMEOUT):
                new = await asyncio.to_thread(load_config, path, self.registry)
        except ConfigError as err:
            count = len(err.problems)
            _LOGGER.error(
                "reload refused: %s has %d problem%s; keeping the running configuration",
                path,
                count,
                "s" if count != 1 else "",
            )
            for problem in err.problems:
                _LOGGER.error("  %s", problem)
            return False
        except TimeoutError:
            _LOGGER.error("reload refused: reading %s took over %g s", path, RELOAD_READ_TIMEOUT)
            return False
        old = self.config
        diff = diff_devices(old, new)
        for node_id in (*diff.removed, *(d.id for d in diff.changed)):
            await self._remove_node(node_id)
        failed: set[str] = set()
        for device in new.devices:
            if device in diff.added or device in diff.changed:
                try:
                    self._start_supervisor(self._add_node(device.id, device))
                except Exception as err:
                    # Only a driver bug gets here (the config was validated): keep the rest.
                    _LOGGER.exception("reload: cannot add device %s: %s", device.id, err)
                    failed.add(device.id)
        if access_changed(old, new):
            self.access.apply(new)
            _LOGGER.info("access lists updated")
        if self.pubsub is not None:
            # pubsub: itself is read once; its audience follows the lists and the devices.
            self.pubsub.apply(dataclasses.replace(new, pubsub=old.pubsub))
        restart = needs_restart(old, new)
        if restart:
            _LOGGER.warning(
                "not applied until hubd restarts: %s changed (systemctl restart hubd)",
                ", ".join(restart),
            )
        # What now runs: the new devices and access lists; the rest as started.
        self.config = dataclasses.replace(
            old,
            access=new.access,
            limits=new.limits,
            devices=tuple(d for d in new.devices if d.id not in failed),
        )
        if not diff.empty and self.client is not None:
            self.client.refresh_presence()
        self._update_status()
        _LOGGER.info("reloaded: %s", diff.summary())
        # What the reload replaced (old devices, the old configuration) was frozen.
        frozen_heap.collect_frozen()
        return True

    async def _remove_node(self, node_id: str) -> None:
        """Take a node out of the table, then stop its supervisor and wait for its driver."""
        self.hub.remove_node(node_id)
        self.supervisors.pop(node_id, None)
        self._down.discard(node_id)
        task = self._node_tasks.pop(node_id, None)
        if task is None:
            return
        task.cancel()
        # asyncio.wait never raises the task's CancelledError into this (reload) task.
        done, _ = await asyncio.wait({task}, timeout=NODE_STOP_TIMEOUT)
        if not done:
            _LOGGER.warning("node %s did not stop within %g s", node_id, NODE_STOP_TIMEOUT)
