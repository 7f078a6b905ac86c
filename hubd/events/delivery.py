"""Handing events to the sink: who is live, who has a backlog, what is in flight.

An event goes out live when its subscriber has nothing waiting in the outbox;
otherwise the subscriber has a backlog, flushed from the store in order once
it is reachable again.  An event is in flight from its delivery until the sink
reports it acknowledged or failed.  An event that could be neither stored nor
sent is counted, and the next event its subscriber gets carries the count
(``dropped``).  The engine (``hubd/events/engine.py``) decides what is sent
and when; this decides how.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from hubd.core.settings import EventsSettings
from hubd.errors import StoreUnavailable
from hubd.events.event import Event, EventSink
from hubd.events.store import Store
from hubd.events.subscriptions import Subscription
from hubd.events.tables import QueuedEvent

_LOGGER = logging.getLogger(__name__)

#: How long a commit waits for live events to reach their subscribers (see
#: let_live_sends_land): about one delivery over a local server.
LIVE_SEND_GRACE = 0.002


class Delivery:
    """The engine's side towards the sink (the XMPP client)."""

    def __init__(
        self,
        store: Store,
        subscriptions: Mapping[tuple[str, str, str], Subscription],
        settings: EventsSettings,
        stats: dict[str, int],
    ) -> None:
        self.store = store
        self.subscriptions = subscriptions  # the engine's, by (subscriber, node id, channel)
        self.settings = settings
        self.stats = stats  # the engine's counters: dropped events are counted here
        self.sink: EventSink | None = None
        self.in_flight: set[int] = set()
        self.backlog: set[str] = set()  # subscribers with events waiting in the outbox
        self.unstored_dropped: dict[str, int] = {}  # per subscriber: events not kept
        # An outbox event put on the wall clock's current scale (see events/clock_steps.py).
        self.restamp: Callable[[int, Event], Event] = lambda _id, event: event

    def count_unstored(self, fresh: Sequence[tuple[int, Event]]) -> None:
        """Fresh events that could neither be stored nor sent are lost: count them."""
        for event_id, event in fresh:
            if event_id not in self.in_flight:
                lost = self.unstored_dropped.get(event.subscriber, 0) + 1
                self.unstored_dropped[event.subscriber] = lost
                self.stats["dropped"] += 1
                if lost == 1:
                    _LOGGER.warning(
                        "events for %s cannot be kept while the state file cannot be"
                        " written: counting them for its next event",
                        event.subscriber,
                    )

    def _with_unstored(self, event: Event) -> Event:
        """The event, carrying the events of its subscriber that could not be kept."""
        lost = self.unstored_dropped.pop(event.subscriber, 0)
        return replace(event, dropped=event.dropped + lost) if lost else event

    def send_live(self, fresh: Sequence[tuple[int, Event]]) -> bool:
        """Send fresh events of subscribers with no backlog; the rest join the backlog.

        When one batch holds several events of the same subscription (the
        events came faster than they went out), a sink that can batch gets
        them together: one message instead of one each.
        """
        batch = getattr(self.sink, "deliver_batch", None)
        if batch is None or len(fresh) < 2:
            sent = False
            for event_id, event in fresh:
                if event.subscriber in self.backlog or not self.send(event_id, event):
                    self.backlog.add(event.subscriber)
                else:
                    sent = True
            return sent
        runs: dict[tuple[str, str, str, int, str], list[tuple[int, Event]]] = {}
        for event_id, event in fresh:
            if event.subscriber in self.backlog or not self.reachable(event.subscriber):
                self.backlog.add(event.subscriber)
                continue
            if event_id in self.in_flight:
                continue
            key = (event.subscriber, event.target, event.node_id, event.seqnr, event.channel)
            runs.setdefault(key, []).append((event_id, event))
        for run in runs.values():
            self.in_flight.update(event_id for event_id, _ in run)
            run[0] = (run[0][0], self._with_unstored(run[0][1]))
            if len(run) == 1:
                assert self.sink is not None
                self.sink.deliver(*run[0])
            else:
                batch(run)
        return bool(runs)

    async def flush(self, subscribers: set[str | None], fresh: set[int]) -> None:
        queued: list[QueuedEvent]
        if None in subscribers:
            queued = await self.store.pending()
        else:
            queued = [q for s in subscribers if s is not None for q in await self.store.pending(s)]
        first_of: set[str] = set()
        stuck: set[str] = set()
        for item in queued:
            dropped = 0
            if item.subscriber not in first_of and self.reachable(item.subscriber):
                first_of.add(item.subscriber)
                try:
                    dropped = await self.store.take_dropped(item.subscriber)
                except StoreUnavailable:
                    dropped = 0  # the count stays stored: a later flush reports it
                if dropped:
                    self.stats["dropped"] += dropped
                    _LOGGER.warning(
                        "%d event(s) for %s were dropped while it was away (queue limit %d)",
                        dropped,
                        item.subscriber,
                        self.settings.queue_limit,
                    )
            event = Event.from_json(item.event, dropped)
            event = replace(self.restamp(item.id, event), delayed=item.id not in fresh)
            sub = self.subscriptions.get((event.subscriber, event.node_id, event.channel))
            if sub is not None and sub.spec.target != event.target:
                event = replace(event, target=sub.spec.target)
            if not self.send(item.id, event):
                stuck.add(item.subscriber)
        # A subscriber whose whole backlog went out is live again.
        flushed = {q.subscriber for q in queued} | {s for s in subscribers if s is not None}
        if None in subscribers:
            flushed |= self.backlog
        self.backlog -= flushed - stuck

    def reachable(self, subscriber: str) -> bool:
        return self.sink is not None and self.sink.can_deliver(subscriber)

    def send(self, event_id: int, event: Event) -> bool:
        """Hand one event to the sink; False when it cannot go now."""
        if event_id in self.in_flight:
            return True
        if self.sink is None or not self.sink.can_deliver(event.subscriber):
            return False
        self.in_flight.add(event_id)
        self.sink.deliver(event_id, self._with_unstored(event))
        return True


async def let_live_sends_land(wake: asyncio.Event) -> None:
    """Hold the commit back while the events just sent travel to their subscribers.

    The engine yields first so that the XMPP stream writes them.  Then the
    commit's worker thread would compete for the CPU with the server and the
    subscriber while the message is on its way (on a small machine with the
    server on it, 0.1-0.2 ms of a 2 ms delivery): so the commit waits up to
    :data:`LIVE_SEND_GRACE`, or less as soon as anything else wakes the
    engine (new values, acknowledgements), so that a burst is not slowed.
    The events are already on the wire; acknowledgements still wait for
    the commit that stores them (they are taken at the start of a batch).
    """
    await asyncio.sleep(0)
    if wake.is_set():
        return
    try:
        async with asyncio.timeout(LIVE_SEND_GRACE):
            await wake.wait()  # left set: the run loop handles it next
    except TimeoutError:
        pass
