"""Find drivers through the ``hubd.drivers`` entry-point group, loading only what is used.

The core never imports a driver module by name: a GPIO-only Pi never imports
bleak, because the BLE drivers' modules are loaded only when a device of theirs
is configured.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from hubd.core.driver import AnyDriver, Driver

GROUP = "hubd.drivers"


class UnknownDriver(LookupError):
    """No installed driver has that kind."""


class DriverRegistry:
    """The installed drivers, by kind."""

    def __init__(self, points: dict[str, EntryPoint] | None = None) -> None:
        if points is None:
            points = {ep.name: ep for ep in entry_points(group=GROUP)}
        self._points = points
        self._loaded: dict[str, type[AnyDriver]] = {}

    def kinds(self) -> list[str]:
        """Every installed driver kind, sorted."""
        return sorted(self._points)

    def load(self, kind: str) -> type[AnyDriver]:
        """Import and return the driver class of ``kind``."""
        if kind in self._loaded:
            return self._loaded[kind]
        point = self._points.get(kind)
        if point is None:
            raise UnknownDriver(kind)
        cls = point.load()
        if not (isinstance(cls, type) and issubclass(cls, Driver)):
            raise TypeError(f"entry point {kind} -> {point.value} is not a Driver subclass")
        if cls.kind != kind:
            raise TypeError(f"entry point {kind} -> {point.value} declares kind {cls.kind!r}")
        self._loaded[kind] = cls
        return cls
