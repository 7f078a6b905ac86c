"""The one shared scanner per adapter, and the backends it runs on.

BlueZ lets one process run one discovery per adapter, and a second
``BleakScanner`` would compete with the first, so every BLE driver of the hub
shares one :class:`SharedScanner`, kept in the context's shared resources.
Drivers subscribe by device address and receive :class:`Advertisement`
callbacks on the event-loop thread.  The scanner starts with its first
subscriber and stops when the last one leaves; the app closes it at shutdown.

Like bleak's backend per platform, the scanner runs on a backend
(:class:`~drivers.ble.scan_backend.ScanBackend`): scanning with bleak on
BlueZ (:mod:`drivers.ble.bleak_scanner`, imported only when a device needs
the radio) or playing a recorded file (:mod:`drivers.ble.replay`, which never
imports bleak).

When the backend cannot start (no D-Bus, no BlueZ, no adapter), the scanner
logs the reason once per process, not once per node, and every subscriber's
``start()`` fails with :class:`~hubd.errors.DriverUnavailable` carrying the
same short text, so each BLE node is offline with one clear message while the
rest of the hub keeps running.

A radio scan can die under a running scanner: bluetoothd restarts, the
adapter is reset or unplugged, and BlueZ tells bleak nothing it passes on.
With ``silence`` set (``ble.rescan_after``), a watchdog restarts a scan that
has heard no advertisement at all (from any device nearby, not only the
configured ones) for that long, and keeps trying while it cannot start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final

from hubd.core.driver import DriverContext
from hubd.errors import DriverUnavailable

from .advertisement import Advertisement, normalize_address
from .scan_backend import (
    STOP_TIMEOUT,
    AdvertCallback,
    BackendUnavailable,
    ScanBackend,
    cancel_and_wait,
)

__all__ = ["SharedScanner", "Subscription", "shared_scanner"]

_LOGGER = logging.getLogger(__name__)

RETRY_AFTER: Final = 5.0
"""Seconds during which a failed start is not retried: nodes starting together try once."""


class Subscription:
    """One subscriber's interest in one address; hand it back to unsubscribe."""

    __slots__ = ("address", "callback")

    def __init__(self, address: str, callback: AdvertCallback) -> None:
        self.address = address
        self.callback = callback


class SharedScanner:
    """Fans the advertisements of one backend out to subscribers by address."""

    def __init__(
        self,
        backend: ScanBackend,
        clock: Callable[[], float] | None = None,
        *,
        silence: float | None = None,
    ) -> None:
        self.backend = backend
        self.silence = silence
        self._loop = asyncio.get_running_loop()
        self._last_advert = self._loop.time()
        self._quiet_restarts = 0
        self._watchdog: asyncio.Task[None] | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._lock = asyncio.Lock()
        self._running = False
        self._closed = False
        self._failure: tuple[float, str] | None = None
        self._reported: str | None = None
        self._clock = clock or self._loop.time

    @property
    def running(self) -> bool:
        """True while the backend delivers advertisements."""
        return self._running

    def subscriber_count(self) -> int:
        """How many subscriptions are active."""
        return sum(len(subs) for subs in self._subscriptions.values())

    async def subscribe(self, address: str, callback: AdvertCallback) -> Subscription:
        """Deliver the advertisements of ``address`` to ``callback``; start scanning if needed.

        Raises DriverUnavailable when the backend cannot start.
        """
        subscription = Subscription(normalize_address(address), callback)
        async with self._lock:
            if self._closed:
                raise DriverUnavailable("Bluetooth LE scanner is closed (hubd is stopping)")
            if not self._running:
                await self._start_backend()
            self._subscriptions.setdefault(subscription.address, []).append(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription``; stop scanning when nobody is left."""
        async with self._lock:
            subs = self._subscriptions.get(subscription.address, [])
            if subscription in subs:
                subs.remove(subscription)
                if not subs:
                    del self._subscriptions[subscription.address]
            if self._running and not self._subscriptions:
                await self._stop_backend()

    async def close(self) -> None:
        """Stop scanning for good (at shutdown)."""
        async with self._lock:
            self._closed = True
            self._subscriptions.clear()
            if self._running:
                await self._stop_backend()
        await cancel_and_wait(self._watchdog)

    async def _start_backend(self) -> None:
        now = self._clock()
        if self._failure is not None and now - self._failure[0] < RETRY_AFTER:
            raise DriverUnavailable(self._failure[1])
        try:
            await self.backend.start(self._deliver)
        except BackendUnavailable as err:
            message = str(err)
            self._failure = (now, message)
            if message != self._reported:
                # Once per process and reason: every BLE node will say the same.
                _LOGGER.warning(
                    "Bluetooth LE is unavailable: %s; BLE devices stay offline, "
                    "the rest of the hub keeps running",
                    message,
                )
                self._reported = message
            raise DriverUnavailable(message) from err
        self._running = True
        self._failure = None
        self._last_advert = self._loop.time()
        if self.silence is not None and (self._watchdog is None or self._watchdog.done()):
            self._watchdog = asyncio.create_task(
                self._watch_silence(self.silence), name=f"ble silence watchdog {self.backend.label}"
            )
        if self._reported is not None:
            _LOGGER.info("Bluetooth LE is available again (%s)", self.backend.label)
            self._reported = None
        else:
            _LOGGER.info("Bluetooth LE scanning started (%s)", self.backend.label)

    async def _stop_backend(self) -> None:
        self._running = False
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.backend.stop()
        except TimeoutError:
            _LOGGER.warning("Bluetooth LE scanner (%s) did not stop in time", self.backend.label)
        else:
            _LOGGER.debug("Bluetooth LE scanning stopped (%s)", self.backend.label)

    async def _watch_silence(self, silence: float) -> None:
        """Restart a scan that heard nothing for ``silence`` seconds; retry one that cannot start.

        Ends when nobody subscribes any more; a later start makes a new one.
        """
        while True:
            quiet = self._loop.time() - self._last_advert
            if quiet < silence:
                await asyncio.sleep(silence - quiet)
                continue
            async with self._lock:
                if self._closed or not self._subscriptions:
                    return
                self._quiet_restarts += 1
                # Once per silent spell: a quiet place would log it every few minutes.
                log = _LOGGER.warning if self._quiet_restarts == 1 else _LOGGER.debug
                log(
                    "no Bluetooth LE advertisement for %.0f s on %s: restarting the scan",
                    quiet,
                    self.backend.label,
                )
                if self._running:
                    await self._stop_backend()
                # A failure is logged by _start_backend, once per reason; tried again later.
                with contextlib.suppress(DriverUnavailable):
                    await self._start_backend()
                self._last_advert = self._loop.time()

    def _deliver(self, advert: Advertisement) -> None:
        self._last_advert = self._loop.time()
        if self._quiet_restarts:
            self._quiet_restarts = 0
            _LOGGER.info("Bluetooth LE advertisements heard again on %s", self.backend.label)
        for subscription in tuple(self._subscriptions.get(advert.address, ())):
            try:
                subscription.callback(advert)
            except Exception:
                # One driver's bug must not starve the other subscribers.
                _LOGGER.exception("BLE subscriber of %s failed", advert.address)


def shared_scanner(ctx: DriverContext) -> SharedScanner:
    """Return the process's scanner for the configured adapter (or replay file)."""
    ble = ctx.settings.ble
    if ble.replay is not None:
        replay_file = ble.replay
        key = f"ble.scanner:replay:{replay_file}"

        def make() -> SharedScanner:
            from .replay import ReplayBackend

            return SharedScanner(ReplayBackend(replay_file, speed=ble.speed, loop=ble.loop))

    else:
        adapter = ble.adapter
        key = f"ble.scanner:{adapter}"

        def make() -> SharedScanner:
            # Imported here, so that bleak is loaded only when the radio is used.
            from .bleak_scanner import BleakBackend

            return SharedScanner(BleakBackend(adapter), silence=ble.rescan_after)

    return ctx.resources.get_or_create(key, make, SharedScanner.close)
