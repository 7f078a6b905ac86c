"""The event engine: turns new values into events for subscribers, and never loses one.

Flow: the hub hands every published value to :meth:`EventEngine.on_values` (synchronously,
on the loop). Each subscription of that node decides whether it fires (see
``hubd/events/subscriptions.py``); events go into a bounded in-memory queue, and the
engine's own task hands them to the delivery side (the XMPP client, an :class:`EventSink`)
and keeps them until the server has acknowledged them (XEP-0198). One that is not
acknowledged within seconds, or that waits (an offline subscriber, a lost link), is written
to the store's outbox, and leaves it only once acknowledged, so a lost link, an offline
subscriber or a restart keeps it for the next delivery. Commits are batched to spare the SD
card (see ``hubd/events/pending.py``: what ``kill -9`` can cost). A slow or absent
subscriber never stalls a driver: ``on_values`` only appends to a queue.

Readings also go into the store's history (which ones: ``hubd/events/history_sampling.py``).

When the store cannot be written (a full disk, see ``hubd/events/store.py``), live events
still go out; acknowledgements and subscription changes wait in memory for the next commit
that succeeds; readings of that time are not kept; an event for a subscriber who cannot take
it now cannot be kept either: it is counted, and the next event delivered to that subscriber
carries the count (``dropped``), as for the queue limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from hubd.core.clock import ClockWatch
from hubd.core.driver import utc_now
from hubd.core.hub import Hub
from hubd.core.model import FieldValue
from hubd.core.node import Node
from hubd.core.remote_nodes import chain_nodes
from hubd.core.settings import EventsSettings
from hubd.errors import StoreUnavailable
from hubd.events import clock_steps
from hubd.events.delivery import Delivery, let_live_sends_land
from hubd.events.event import Event, EventSink, outbox_texts
from hubd.events.history_sampling import HistorySampler, prune_history
from hubd.events.pending import SOON, PendingWrites
from hubd.events.store import Store
from hubd.events.subscriptions import Subscription, SubscriptionSpec

_LOGGER = logging.getLogger(__name__)

MEMORY_QUEUE_LIMIT = 10_000

SubKey = tuple[str, str, str]  # (subscriber, node id, channel)
#: Pruning deletes a few rows at ten places of the history's index (one per field):
#: every six hours, a quarter of the pages an hourly one writes.
PRUNE_EVERY = timedelta(hours=6)


class EventEngine:
    """Owns the subscriptions, their timers, the outbox and the history.

    Handing events to the sink (live or from the outbox) is its
    :class:`~hubd.events.delivery.Delivery`'s part.
    """

    def __init__(
        self,
        hub: Hub,
        store: Store,
        settings: EventsSettings | None = None,
        now: Callable[[], datetime] = utc_now,
        clock: ClockWatch | None = None,
        remote_nodes: Mapping[str, Node] | None = None,
    ) -> None:
        self.hub = hub
        self.nodes = chain_nodes(hub.nodes, remote_nodes)
        self.store = store
        self.settings = settings or EventsSettings()
        self.now = now
        self.subscriptions: dict[SubKey, Subscription] = {}
        self.stats = {"events": 0, "dropped": 0}
        self.delivery = Delivery(store, self.subscriptions, self.settings, self.stats)
        self._queue: deque[Event] = deque()
        self._unrecorded: list[tuple[str, Sequence[FieldValue]]] = []  # for the history
        self._sampler = HistorySampler(self.settings)
        self._acked: list[int] = []
        self._wake = asyncio.Event()
        self._flush_requests: set[str | None] = set()
        self._next_id = 1
        self._timers: dict[SubKey, list[asyncio.TimerHandle]] = {}
        self._dirty: set[SubKey] = set()
        self._lost_in_memory = 0
        self._unsaved: set[SubKey] = set()  # subscriptions a failed write left unstored
        self._generation = store.generation
        # True while the run loop waits with nothing to do: the next event goes out
        # from on_values itself (see _send_first_now), not one loop turn later.
        self._idle = False
        self._sent_early = False  # an event went out that way since the last batch
        # Steps of the wall clock (a Pi setting its clock after boot); a fixed ``now``
        # (tests) has none unless a watch is given.
        self.clock = clock_steps.ClockSteps(clock or (ClockWatch() if now is utc_now else None))
        self.delivery.restamp = self.clock.restamp
        self._pending = PendingWrites(
            self.settings.commit_interval, lambda: asyncio.get_running_loop().time()
        )
        hub.add_listener(self)

    # --- lifecycle --------------------------------------------------------------

    async def load(self) -> None:
        """Restore subscriptions from the store (unknown nodes are dropped)."""
        self._next_id = await self.store.max_event_id() + 1
        self.clock.first_id = self._next_id
        self.delivery.backlog = set(await self.store.waiting_subscribers())
        for row in await self.store.subscriptions():
            if row.node_id not in self.nodes:
                with contextlib.suppress(StoreUnavailable):  # logged; tried again next start
                    await self.store.delete_subscription(row.subscriber, row.node_id)
                continue
            sub = Subscription(SubscriptionSpec.from_json(row.spec))
            sub.load_state(row.state)
            self.subscriptions[sub.key] = sub
            self._schedule(sub)
        if self.subscriptions:
            _LOGGER.info("restored %d event subscription(s)", len(self.subscriptions))

    async def run(self) -> None:
        """Persist and deliver events until cancelled (then :meth:`close` writes the rest)."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time()  # monotonic: a step of the wall clock does not move it
        try:
            while True:
                due = self._pending.due(self.delivery.in_flight)
                self._idle = not self._wake.is_set()
                with contextlib.suppress(TimeoutError):  # the commit is due
                    async with asyncio.timeout(None if due is None else due - loop.time()):
                        await self._wake.wait()
                self._idle = False
                self._wake.clear()
                await self._persist_and_deliver()
                if loop.time() >= next_prune:
                    next_prune = loop.time() + PRUNE_EVERY.total_seconds()
                    self._check_clock()  # rows stamped before a step move before the cutoff
                    days = timedelta(days=self.settings.history_days)
                    await prune_history(self.store, self.clock, self.now() - days)
        finally:
            for handles in self._timers.values():
                for handle in handles:
                    handle.cancel()
            self._timers.clear()

    async def close(self) -> None:
        """Write what waits in memory, events in flight too (hubd stops, the store not yet)."""
        self._take_acks()
        if self._pending.holds() or self._dirty or self._unsaved or self.store.kept:
            await self._commit(everything=True)

    def attach(self, sink: EventSink) -> None:
        """Set the delivery side."""
        self.delivery.sink = sink

    # --- subscribe / unsubscribe -----------------------------------------------

    async def subscribe(self, spec: SubscriptionSpec) -> Subscription:
        """Add or replace the subscription of (subscriber, node); persisted before return."""
        node = self.nodes.get(spec.node_id) or self.hub.node(spec.node_id)
        old = self.subscriptions.pop((spec.subscriber, spec.node_id, spec.channel), None)
        if old is not None:
            self._cancel_timers(old.key)
        sub = Subscription(spec)
        current = [v for v in node.cache.values() if (s := node.spec.get(v.name)) and sub.wants(s)]
        sub.seed(current)
        self.subscriptions[sub.key] = sub
        try:
            await self.store.save_subscription(sub.stored())
        except StoreUnavailable:
            # It works from now on; the next commit that succeeds stores it.
            self._follow_store_replacement()
            self._unsaved.add(sub.key)
        self._schedule(sub)
        if spec.req and current:
            self._emit(sub, current)
        return sub

    async def unsubscribe(
        self, subscriber: str, node_id: str | None = None, channel: str = "iot"
    ) -> int:
        """End one subscription (or all of a subscriber's on a channel); return how many ended."""
        keys = [
            k
            for k in self.subscriptions
            if k[0] == subscriber and node_id in (None, k[1]) and k[2] == channel
        ]
        for key in keys:
            self._cancel_timers(key)
            del self.subscriptions[key]
            self._unsaved.discard(key)
        try:
            await self.store.delete_subscription(subscriber, node_id, channel)
            if not any(k[0] == subscriber for k in self.subscriptions):
                self._pending.forget(subscriber)
                await self.store.drop_subscriber_events(subscriber)
        except StoreUnavailable:
            # Ended in memory now; a restart before the disk has room would bring it back.
            self._follow_store_replacement()
        return len(keys)

    def subscriptions_of(self, subscriber: str, channel: str | None = None) -> list[Subscription]:
        """The subscriptions of one subscriber (bare JID), on one channel or all."""
        return [
            s
            for k, s in self.subscriptions.items()
            if k[0] == subscriber and channel in (None, k[2])
        ]

    def retarget(self, subscriber: str, target: str) -> None:
        """Deliver a subscriber's events to ``target`` (a resource that came online)."""
        for sub in self.subscriptions_of(subscriber):
            if sub.spec.target != target:
                sub.spec = replace(sub.spec, target=target)
                self._dirty.add(sub.key)
        self.request_flush(subscriber)

    # --- from the hub -----------------------------------------------------------

    def on_values(self, node: Node, values: Sequence[FieldValue]) -> None:
        """New values of ``node``: record history, evaluate its subscriptions."""
        self._check_clock(values)
        # History waits until the events went out (see _persist_and_deliver).
        self._unrecorded.append((node.id, values))
        specs = node.spec.by_name
        now = self.now()
        for sub in self.subscriptions.values():
            if sub.spec.node_id != node.id:
                continue
            fired = sub.triggered(values, specs)
            if not fired:
                continue
            hold = sub.hold_until(now)
            if hold is not None:
                sub.pending.update((v.name, v) for v in fired)
                self._arm_release(sub, hold)
            else:
                self._emit(sub, fired, wake=False)
        if self._idle and self._queue and not self._flush_requests:
            self._send_first_now()
        self._wake.set()

    def on_state(self, node: Node) -> None:
        """State changes arrive as the ``online`` field through on_values."""

    # --- from the delivery side ------------------------------------------------

    def request_flush(self, subscriber: str | None = None) -> None:
        """Deliver what waits in the outbox (for one subscriber, or all)."""
        self._flush_requests.add(subscriber)
        self._wake.set()

    def session_restarted(self) -> None:
        """A fresh XMPP session: nothing sent before it will be acknowledged now."""
        self.delivery.in_flight.clear()
        self.request_flush(None)

    def acked(self, event_ids: Iterable[int]) -> None:
        """The server acknowledged these events: they may leave the outbox."""
        ids = [i for i in event_ids if i in self.delivery.in_flight]
        if ids:
            self._acked.extend(ids)
            self._wake.set()

    def failed(self, event_id: int) -> None:
        """An event bounced: keep it for the next flush."""
        self.delivery.in_flight.discard(event_id)

    # --- internals ---------------------------------------------------------------

    def _emit(self, sub: Subscription, values: Sequence[FieldValue], wake: bool = True) -> None:
        now = self.now()
        sub.reported(values, now)
        self._dirty.add(sub.key)
        self._queue.append(
            Event(
                subscriber=sub.spec.subscriber,
                target=sub.spec.target,
                node_id=sub.spec.node_id,
                seqnr=sub.spec.seqnr,
                values=tuple(values),
                created=min((v.timestamp for v in values), default=now),
                channel=sub.spec.channel,
            )
        )
        if len(self._queue) > MEMORY_QUEUE_LIMIT:
            self._queue.popleft()
            self._lost_in_memory += 1
            if self._lost_in_memory == 1:
                _LOGGER.warning("event queue full (%d): dropping the oldest", MEMORY_QUEUE_LIMIT)
        self.stats["events"] += 1
        if wake:
            self._wake.set()

    def _take_fresh(self) -> list[tuple[int, Event]]:
        """Number the queued events and hold them (a stop that cancels a batch writes them)."""
        fresh: list[tuple[int, Event]] = []
        while self._queue:
            fresh.append((self._next_id, self._queue.popleft()))
            self._next_id += 1
        self._pending.add(fresh)
        return fresh

    def _send_first_now(self) -> None:
        """The first events after a quiet time go out at once, the rest of the batch later.

        A value that arrives while the engine waits would otherwise go out one
        loop turn later, behind the run loop's wake-up (on a loop that slept,
        a turn costs more than the send).  The events are numbered and held for
        the commit exactly as a batch would (``_take_fresh``) before they are
        sent; history, references, the commit and the acknowledgement request
        follow in the batch this wakes.  Only one such send per batch: what
        comes faster is batched as before.
        """
        self._idle = False
        self._follow_store_replacement()
        self._sent_early = self.delivery.send_live(self._take_fresh()) or self._sent_early

    def _schedule(self, sub: Subscription) -> None:
        if sub.spec.max_interval is not None:
            self._arm(sub.key, sub.spec.max_interval.total_seconds(), self._heartbeat)

    def _arm(self, key: SubKey, delay: float, callback: Callable[[SubKey], None]) -> None:
        loop = asyncio.get_running_loop()
        handles = self._timers.setdefault(key, [])
        handles[:] = [h for h in handles if not h.cancelled()]
        handles.append(loop.call_later(max(delay, 0.0), callback, key))

    def _arm_release(self, sub: Subscription, when: datetime) -> None:
        if sub.release_armed:
            return
        sub.release_armed = True
        self._arm(sub.key, (when - self.now()).total_seconds(), self._release)

    def _release(self, key: SubKey) -> None:
        self._check_clock()
        sub = self.subscriptions.get(key)
        if sub is None:
            return
        sub.release_armed = False
        if sub.pending:
            self._emit(sub, list(sub.pending.values()))

    def _heartbeat(self, key: SubKey) -> None:
        self._check_clock()
        sub = self.subscriptions.get(key)
        if sub is None or sub.spec.max_interval is None:
            return
        due = (
            sub.last_sent or datetime.min.replace(tzinfo=self.now().tzinfo)
        ) + sub.spec.max_interval
        now = self.now()
        if now >= due - timedelta(milliseconds=50):
            node = self.nodes.get(sub.spec.node_id)
            reachable = self.delivery.reachable(sub.spec.subscriber)
            # Heartbeats only for a reachable subscriber: they must not pile up offline.
            if node is not None and reachable:
                current = [
                    v for v in node.cache.values() if (s := node.spec.get(v.name)) and sub.wants(s)
                ]
                if current:
                    self._emit(sub, current)
            due = now + sub.spec.max_interval
        self._arm(key, (due - now).total_seconds(), self._heartbeat)

    def _cancel_timers(self, key: SubKey) -> None:
        for handle in self._timers.pop(key, []):
            handle.cancel()

    def _check_clock(self, fresh: Sequence[FieldValue] = ()) -> None:
        """After a step of the wall clock, move what was stamped before it (not ``fresh``)."""
        step = self.clock.check(self._next_id)
        if step is None:
            return
        delta, move = step.delta, clock_steps.move_value
        self._queue = deque(clock_steps.move_event(event, delta) for event in self._queue)
        self._unrecorded = [(n, [move(v, delta) for v in vs]) for n, vs in self._unrecorded]
        self._sampler.shift(delta)
        self._pending.shift(delta)
        for sub in self.subscriptions.values():
            clock_steps.move_subscription(sub, delta)
        clock_steps.move_nodes(self.nodes.values(), delta, keep=fresh)
        self._wake.set()  # the store's history moves with the next batch

    async def _persist_and_deliver(self) -> None:
        # A damaged file met by any reader (a historical readout too) was replaced.
        self._follow_store_replacement()
        self._check_clock()
        await self.clock.shift_history(self.store)  # before rows on the new scale are written
        # Acknowledgements taken first: an event never written needs nothing more.
        self._take_acks()
        fresh = self._take_fresh()  # held before anything is sent
        flush, self._flush_requests = self._flush_requests, set()
        sent, self._sent_early = self._sent_early, False
        if not flush:
            # The live path: a subscriber with nothing waiting gets its event now;
            # order holds because nothing is older.
            sent = self.delivery.send_live(fresh) or sent
        if sent and not flush:
            await let_live_sends_land(self._wake)
        # Everything below waits for the live sends: on a loop that slept since
        # the last reading, each step costs several times its warm cost.
        unrecorded, self._unrecorded = self._unrecorded, []
        history = [row for n, values in unrecorded for row in self._sampler.rows(n, values)]
        if history:
            self.store.keep_history(history)
            self._pending.within(self.settings.commit_interval)
        if self._dirty:  # (also the ones a failed commit left)
            self._pending.references_changed()
        if self._unsaved:
            self._pending.within(SOON)
        # A flush reads the outbox: what waits in memory goes there first.
        due = flush or self._pending.is_due(self.delivery.in_flight)
        stored = await self._commit() if due else True
        if flush:
            try:
                await self.delivery.flush(flush, fresh={i for i, _ in fresh})
            except StoreUnavailable:
                # The outbox cannot be read (a damaged file now replaced, a failing
                # disk): the next wake-up tries again.
                self._follow_store_replacement()
                self._flush_requests |= flush
            covered = self.delivery.backlog if None in flush else flush
            self.delivery.send_live([(i, e) for i, e in fresh if e.subscriber not in covered])
            sent = True
            # The stream writes them before end_batch asks for an acknowledgement:
            # an <r/> ahead of them would be answered without them, and they would
            # wait in the outbox (and come again after a restart).
            await let_live_sends_land(self._wake)
        if not stored:
            self.delivery.count_unstored(self._pending.unwritable(self.delivery.in_flight))
        if sent and self.delivery.sink is not None:
            self.delivery.sink.end_batch()

    def _take_acks(self) -> None:
        acked, self._acked = self._acked, []
        if acked:
            self.delivery.in_flight.difference_update(acked)
            self._pending.acknowledged(acked)
            _LOGGER.debug("%d event(s) acknowledged, up to id %d", len(acked), max(acked))

    async def _commit(self, everything: bool = False) -> bool:
        """Write what waits in memory in one commit (see ``hubd/events/pending.py``);
        False when the store cannot be written."""
        events = self._pending.take(self.delivery.in_flight, everything)
        texts = outbox_texts(u.event for u in events.values())
        rows = [(i, u.event.subscriber, t) for (i, u), t in zip(events.items(), texts, strict=True)]
        acks, self._pending.acks = self._pending.acks, []
        written = self._pending.take_references(everything)  # else they wait
        dirty, self._dirty = (self._dirty, set()) if written else (set(), self._dirty)
        states = [
            (key[0], key[1], key[2], sub.spec.target, sub.state_json())
            for key in dirty
            if (sub := self.subscriptions.get(key)) is not None
        ]
        saves = [sub for key in self._unsaved if (sub := self.subscriptions.get(key))]
        try:
            await self.store.commit_batch(
                delivered=acks,
                states=states,
                events=rows,
                limit=self.settings.queue_limit,
                subscriptions=[sub.stored() for sub in saves],
            )
        except StoreUnavailable:
            # Logged once by the store.  Everything but the readings is tried again
            # with the next commit; events that are not in flight cannot wait (the
            # caller counts them).
            self._pending.put_back(events, acks)
            self._dirty |= dirty
            self._follow_store_replacement()
            self._pending.within(self.settings.commit_interval)
            return False
        finally:
            self._pending.rearm()
        self._unsaved.difference_update(sub.key for sub in saves)
        if events:
            _LOGGER.debug("stored %d event(s), up to id %d", len(events), max(events))
        return True

    def _follow_store_replacement(self) -> None:
        """After a failed write, and before each batch: a damaged file replaced by a
        fresh one needs every subscription written again, and it holds no backlog."""
        if self.store.generation != self._generation:
            self._generation = self.store.generation
            self._unsaved = set(self.subscriptions)
            self.delivery.backlog.clear()
            self._wake.set()
