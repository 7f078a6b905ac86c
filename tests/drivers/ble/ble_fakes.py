"""A scanner backend the test drives by hand, for driver tests without D-Bus."""

from __future__ import annotations

import asyncio

from drivers.ble.advertisement import Advertisement
from drivers.ble.scan_backend import AdvertCallback, BackendUnavailable


class FakeBackend:
    """A backend the test drives by hand."""

    label = "fake"

    def __init__(self, failure: str | None = None) -> None:
        self.failure = failure
        self.starts = 0
        self.stops = 0
        self.deliver: AdvertCallback | None = None
        self.started = asyncio.Event()
        self.attempted = asyncio.Event()  # set at every start, failed or not

    async def start(self, deliver: AdvertCallback) -> None:
        self.starts += 1
        self.attempted.set()
        if self.failure:
            raise BackendUnavailable(self.failure)
        self.deliver = deliver
        self.started.set()

    async def stop(self) -> None:
        self.stops += 1
        self.deliver = None
        self.started.clear()

    def send(self, advert: Advertisement) -> None:
        """Deliver one advertisement, as the radio would."""
        assert self.deliver is not None, "nobody is scanning"
        self.deliver(advert)
