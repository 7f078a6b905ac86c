"""``example.counter`` alone, with hubd's shipped fakes: no daemon, no XMPP server.

``hubd.testing.drivers.make_context`` builds the same DriverContext the daemon
gives a driver, with what it publishes recorded, so the tests wait for values
instead of sleeping.
"""

from __future__ import annotations

import pytest
from hubd_counter.driver import CounterConfig, CounterDriver
from pydantic import ValidationError

from hubd.errors import InvalidValue
from hubd.testing.drivers import make_context


def config(**options: object) -> CounterConfig:
    return CounterConfig.model_validate({"id": "clicks", "driver": "example.counter", **options})


async def test_it_counts_by_step_and_wraps_beyond_maximum() -> None:
    ctx, recorder = make_context(node_id="clicks")
    driver = CounterDriver(config(interval=0.01, step=2, maximum=5), ctx)
    await driver.start()
    try:
        values = await recorder.wait_for(5)
    finally:
        await driver.stop()
    assert [value.value for value in values[:5]] == [0, 2, 4, 0, 2]
    assert {value.name for value in values} == {"count"}


async def test_a_written_count_is_published_and_remembered_across_a_restart() -> None:
    ctx, recorder = make_context(node_id="clicks")
    driver = CounterDriver(config(interval=3600), ctx)
    await driver.start()
    await driver.write("count", 41)
    assert recorder.latest("count") is not None
    assert recorder.latest("count").value == 41  # type: ignore[union-attr]
    await driver.stop()
    await driver.stop()  # idempotent

    again = CounterDriver(config(interval=3600), ctx)  # same context: same node memory
    await again.start()
    try:
        assert [value.value for value in await again.read(frozenset())] == [41]
    finally:
        await again.stop()


async def test_the_field_description_bounds_what_the_hub_lets_through() -> None:
    ctx, _ = make_context(node_id="clicks")
    # The hub validates every control with the field's description before write().
    [count] = CounterDriver(config(maximum=10), ctx).describe().fields
    assert count.writable
    assert count.coerce("7") == 7  # chat and XMPP hand over text
    with pytest.raises(InvalidValue, match="above the maximum 10"):
        count.coerce("11")
    with pytest.raises(InvalidValue, match="below the minimum 0"):
        count.coerce(-1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"step": 0}, "greater than or equal to 1"),
        ({"step": 5, "maximum": 3}, "step: 5 is above maximum"),
        ({"stpe": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**options)
