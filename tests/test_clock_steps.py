"""Steps of the wall clock (a Pi without a real-time clock setting it after boot).

The wall clock here is the real one plus an offset the test moves; the
monotonic clock is the real one, as on a Pi, so the engine's timers (the
event loop's) run on while the wall clock jumps.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_subscriptions import TEMP, FakeSink, Thermometer

from hubd.core.clock import ClockWatch, clock_is_plausible, describe_step
from hubd.core.driver import DriverConfig
from hubd.core.hub import Hub
from hubd.core.model import FieldValue, NodeState
from hubd.core.node import Node
from hubd.core.settings import EventsSettings
from hubd.events.clock_steps import ClockSteps, move_event, shift_history_rows
from hubd.events.engine import EventEngine
from hubd.events.event import Event
from hubd.events.store import Store
from hubd.events.subscriptions import SubscriptionSpec
from hubd.events.tables import SCHEMA, HistoryRow, insert_history
from hubd.testing.drivers import make_context
from hubd.xmpp.connection import describe_tls_failure

BOOT = datetime(2019, 6, 1, 12, 0, tzinfo=UTC)  # what a Pi without RTC may say at boot
HOUR = timedelta(hours=1)


class SteppedClock:
    """The real clock, shifted by ``offset`` seconds; :meth:`step` makes the wall clock jump."""

    def __init__(self, start: datetime) -> None:
        self.offset = start.timestamp() - time.time()

    def wall(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    def step(self, delta: timedelta) -> None:
        self.offset += delta.total_seconds()

    def watch(self) -> ClockWatch:
        return ClockWatch(wall=self.wall)


# --- the watch -------------------------------------------------------------------------


def test_drift_is_followed_and_a_step_is_seen() -> None:
    wall, mono = [1000.0], [50.0]
    watch = ClockWatch(wall=lambda: wall[0], monotonic=lambda: mono[0])
    wall[0], mono[0] = 1010.5, 60.0  # half a second of drift in ten: NTP slewing
    assert watch.check() is None
    wall[0], mono[0] = 1011.5 + 3600, 61.0  # the clock was set an hour ahead
    step = watch.check()
    assert step is not None
    assert step.delta == HOUR
    assert step.before == datetime.fromtimestamp(1011.5, UTC), "old scale, at the check"
    assert step.after == datetime.fromtimestamp(1011.5 + 3600, UTC)
    assert watch.check() is None, "one step is reported once"
    wall[0] -= 7200  # and set back two hours
    back = watch.check()
    assert back is not None
    assert back.delta == -2 * HOUR


def test_step_sizes_read_well() -> None:
    assert describe_step(timedelta(days=2740)) == "+7.5 years"
    assert describe_step(-timedelta(hours=1, minutes=5)) == "-1 h 5 min"
    assert describe_step(timedelta(seconds=42)) == "+42 s"
    assert describe_step(timedelta(days=3)) == "+3 days"


def test_a_clock_before_hubd_existed_is_not_set() -> None:
    assert not clock_is_plausible(BOOT)
    assert clock_is_plausible(datetime(2026, 12, 3, tzinfo=UTC))


# --- what the hub says when the certificate cannot be checked ---------------------------


def _cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_code = code
    error.verify_message = message
    return error


def test_a_clock_in_the_past_is_named_as_the_cause() -> None:
    reason, clock = describe_tls_failure(_cert_error(9, "certificate is not yet valid"), BOOT)
    assert reason == (
        "the system clock says 2019-06-01, so the server's certificate cannot be checked;"
        " waiting for the clock to be set"
    )
    assert clock


def test_other_certificate_failures_are_not_blamed_on_the_clock() -> None:
    today = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    reason, clock = describe_tls_failure(_cert_error(10, "certificate has expired"), today)
    assert (reason, clock) == (
        "the server's certificate has expired (the system clock says 2026-12-03)",
        False,
    )
    reason, clock = describe_tls_failure(
        _cert_error(19, "self-signed certificate in certificate chain"), today
    )
    assert (reason, clock) == (
        "TLS certificate not trusted: self-signed certificate in certificate chain",
        False,
    )
    reason, clock = describe_tls_failure(_cert_error(9, "certificate is not yet valid"), today)
    assert clock, "a plausible clock may still be unset (fake-hwclock): wait for it too"
    assert "not valid yet by the system clock (2026-12-03)" in reason


# --- moving what was stamped before a step ------------------------------------------------


def test_history_rows_of_the_old_scale_are_moved() -> None:
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        old = BOOT.timestamp()
        rows = [
            HistoryRow("t", "temperature", old + i, {"ts": "x", "v": str(i)}) for i in range(3)
        ] + [HistoryRow("t", "temperature", old + 10_000, {"ts": "y", "v": "later"})]
        insert_history(db, rows)
        delta = 3600.0 * 24 * 365
        assert shift_history_rows(db, old, old + 2, delta) == 3
        stored = db.execute("SELECT ts, value FROM history ORDER BY ts").fetchall()
    moved = [old + 10_000, old + delta, old + delta + 1, old + delta + 2]
    assert [ts for ts, _ in stored] == moved
    assert f'"ts": "{datetime.fromtimestamp(old + delta, UTC).isoformat()}"' in stored[1][1]


def _event(created: datetime) -> Event:
    value = FieldValue("temperature", Decimal("1.5"), created)
    return Event("a@x", "a@x/r", "t", 1, (value,), created)


def test_outbox_events_are_moved_by_the_steps_after_them() -> None:
    wall = [BOOT.timestamp()]
    steps = ClockSteps(ClockWatch(wall=lambda: wall[0], monotonic=lambda: 0.0))
    steps.first_id = 10  # ids below were stored by an earlier run
    wall[0] += 3600
    assert steps.check(next_id=15) is not None
    wall[0] -= 7200
    assert steps.check(next_id=20) is not None
    old = _event(BOOT)
    assert steps.restamp(9, old) == old, "an earlier run's event: its clock is unknown"
    assert steps.restamp(12, old) == move_event(old, -HOUR), "before both steps"
    assert steps.restamp(17, old).created == BOOT - 2 * HOUR, "after the first step"
    assert steps.restamp(20, old) == old, "after both"
    assert [s[2] for s in steps.shifts] == [3600.0, -7200.0]


# --- the engine across steps ----------------------------------------------------------------


@dataclass
class Rig:
    clock: SteppedClock
    hub: Hub
    store: Store
    engine: EventEngine
    sink: FakeSink

    def read(self, reading: str) -> FieldValue:
        value = FieldValue(TEMP.name, Decimal(reading), self.clock.now())
        self.hub.ingest("t", [value])
        return value

    async def subscribe(self, **options: object) -> None:
        spec = SubscriptionSpec(
            subscriber="a@x",
            target="a@x/r",
            node_id="t",
            seqnr=1,
            **options,  # type: ignore[arg-type]
        )
        await self.engine.subscribe(spec)

    async def history(self) -> list[tuple[datetime, str]]:
        await self.store.write_kept()  # what a historical readout does first
        rows = await self.store.history("t", [TEMP.name], 0, 1e12, 100)
        return [(datetime.fromtimestamp(r.ts, UTC), r.value["v"]) for r in rows]


@pytest.fixture(params=[0.0, 300.0], ids=["committed-at-once", "held-in-memory"])
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """Readings written at once, or held in memory for the commit (the default: SD wear);
    every reading is stored (no history sampling), so each one's time can be checked."""
    clock = SteppedClock(BOOT)
    ctx, _ = make_context("t")
    config = DriverConfig(id="t", driver="fake.thermometer")
    hub = Hub([Node.create(config, Thermometer(config, ctx))])
    hub.set_state("t", NodeState.ONLINE)
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    settings = EventsSettings(history_sample=0, commit_interval=request.param)
    engine = EventEngine(hub, store, settings, now=clock.now, clock=clock.watch())
    await engine.load()
    sink = FakeSink()
    engine.attach(sink)
    task = asyncio.create_task(engine.run())
    try:
        yield Rig(clock, hub, store, engine, sink)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.close()


async def test_readings_before_the_clock_is_set_are_filed_at_their_real_time(rig: Rig) -> None:
    rig.sink.reachable = False  # offline: a wrong clock fails the certificate check
    await rig.subscribe()
    first, second = rig.read("1.5"), rig.read("2.5")
    await _eventually_stored(rig, 2)
    set_to = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    delta = set_to - rig.clock.now()
    rig.clock.step(delta)  # NTP sets the clock
    third = rig.read("3.5")
    await _eventually_stored(rig, 3)
    rows = await rig.history()
    assert [v for _, v in rows] == ["1.5", "2.5", "3.5"]
    assert _close(rows[0][0], first.timestamp + delta)
    assert _close(rows[1][0], second.timestamp + delta)
    assert _close(rows[2][0], third.timestamp), "a reading after the step stays"
    assert rig.hub.nodes["t"].cache[TEMP.name] is third
    # The events waited in the outbox: their readings' times and delay stamps are real.
    rig.sink.reachable = True
    rig.engine.request_flush(None)
    await rig.sink.wait(3)
    events = [event for _, event in rig.sink.sent]
    assert [e.values[0].value for e in events] == [Decimal(x) for x in ("1.5", "2.5", "3.5")]
    assert _close(events[0].created, first.timestamp + delta)
    assert _close(events[0].values[0].timestamp, first.timestamp + delta)
    assert _close(events[2].created, third.timestamp)
    assert all(e.created > set_to - HOUR for e in events)


async def _eventually_stored(rig: Rig, count: int) -> None:
    async with asyncio.timeout(5):
        while True:
            if len(await rig.history()) >= count:
                return
            await asyncio.sleep(0.01)


def _close(a: datetime, b: datetime) -> bool:
    # The watch measures a step against the monotonic clock: within microseconds.
    return abs(a - b) < timedelta(milliseconds=5)


@pytest.mark.parametrize("jump", [HOUR, -HOUR], ids=["forward", "back"])
async def test_min_interval_keeps_its_meaning_across_a_jump(rig: Rig, jump: timedelta) -> None:
    await rig.subscribe(min_interval=timedelta(seconds=1))
    rig.read("1.5")
    await rig.sink.wait(1)
    rig.clock.step(jump)
    rig.read("2.5")
    sub = rig.engine.subscriptions[("a@x", "t", "iot")]
    assert sub.pending, "held: a second has not passed, whatever the wall clock says"
    await rig.sink.wait(2)  # released after the second (not an hour later)
    assert rig.sink.sent[1][1].values[0].value == Decimal("2.5")


async def test_max_interval_heartbeats_go_on_across_a_jump_back(rig: Rig) -> None:
    rig.read("1.5")
    await rig.subscribe(max_interval=timedelta(seconds=0.5))
    await rig.sink.wait(1)
    rig.clock.step(-HOUR)
    await rig.sink.wait(3)  # the next heartbeats come on time, not an hour later


async def test_a_step_moves_the_readings_still_held_in_memory(tmp_path: Path) -> None:
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    try:
        before, after = BOOT.timestamp(), BOOT.timestamp() + 10
        value = {"t": "numeric", "v": "1.5"}
        store.keep_history([HistoryRow("t", TEMP.name, before, value)])
        assert store.kept, "held for the next commit (SD-card wear)"
        assert await store.shift_history(before - 1, before + 1, 3600.0) == 1
        store.keep_history([HistoryRow("t", TEMP.name, after + 3600.0, value)])
        rows = await store.history("t", [TEMP.name], 0, 1e12, 100)
        assert [r.ts for r in rows] == [before + 3600.0, after + 3600.0]
    finally:
        await store.close()
