"""Fixtures of the GPIO driver tests: one mock pin factory per test, and a clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from gpio_fakes import FakeClock

from drivers.gpio.pins import RESOURCE_KEY, make_pin_factory
from hubd.core.resources import SharedResources


@pytest.fixture
async def resources() -> AsyncIterator[SharedResources]:
    """Shared resources holding a mock pin factory, closed after the test."""
    shared = SharedResources()
    shared.get_or_create(RESOURCE_KEY, lambda: make_pin_factory("mock"), lambda f: f.close())
    yield shared
    await shared.close_all()


@pytest.fixture
def factory(resources: SharedResources) -> Any:
    """The mock pin factory the drivers under test use (``factory.pin(17)``)."""
    return resources.get_or_create(RESOURCE_KEY, lambda: None)


@pytest.fixture
def clock() -> FakeClock:
    """A hand-moved monotonic clock."""
    return FakeClock()
