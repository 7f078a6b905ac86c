"""Find drivers through the ``hubd.drivers`` entry-point group, loading only what is used.

The core never imports a driver module by name: a GPIO-only Pi never imports
bleak, because the BLE drivers' modules are loaded only when a device of theirs
is configured.
"""

from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points

from hubd.core.driver import AnyDriver, Driver
from hubd.errors import BrokenPlugin

GROUP = "hubd.drivers"

# What importlib.metadata can load: ``module:attribute`` (dotted names).
_VALUE = re.compile(r"^\s*[\w.]+\s*:\s*[\w.]+\s*$")


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
        """Import and return the driver class of ``kind``.

        Raises :class:`UnknownDriver` when no package provides ``kind``, and
        :class:`~hubd.errors.BrokenPlugin` when the one that does cannot be
        loaded; other drivers stay usable either way.
        """
        if kind in self._loaded:
            return self._loaded[kind]
        point = self._points.get(kind)
        if point is None:
            raise UnknownDriver(kind)
        if not _VALUE.match(point.value):
            raise broken(point, "its value is not module:attribute")
        try:
            cls = point.load()
        except Exception as err:  # the package's own code runs here: anything can fail
            raise broken(point, f"cannot be imported: {type(err).__name__}: {err}") from err
        if not (isinstance(cls, type) and issubclass(cls, Driver)):
            raise broken(point, "it is not a hubd Driver class")
        if cls.kind != kind:
            raise broken(point, f"its class declares kind {cls.kind!r}")
        self._loaded[kind] = cls
        return cls


def broken(point: EntryPoint, reason: str) -> BrokenPlugin:
    """The error for an entry point that cannot be used, naming its distribution."""
    dist = point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
    return BrokenPlugin(package, f"{point.name} = {point.value}", reason)
