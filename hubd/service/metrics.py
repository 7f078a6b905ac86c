"""An optional Prometheus endpoint on loopback: a small registry and a stdlib HTTP server.

Off unless ``metrics: {listen: 127.0.0.1:9101}`` is configured.  Only
loopback addresses are accepted (the config refuses others): the hub is
reached over XMPP, and nothing of it should listen on the house's network.
Scrape it locally, or through an SSH tunnel or a local agent.

Adding a metric is one call: :meth:`MetricsRegistry.gauge` with a function
read at scrape time, or :meth:`MetricsRegistry.counter` for a value the code
increments.  The text is the Prometheus exposition format 0.0.4.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_LOGGER = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT = 5.0
WRITE_TIMEOUT = 5.0
MAX_REQUEST_LINE = 4096
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


@dataclass(slots=True)
class Counter:
    """A value that only goes up (reset when hubd restarts, as Prometheus expects)."""

    value: float = 0.0

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (never negative)."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


@dataclass(slots=True)
class _Metric:
    name: str
    kind: str  # "gauge" | "counter"
    help: str
    read: Callable[[], float]
    labels: dict[str, str] = field(default_factory=dict)


class MetricsRegistry:
    """The metrics hubd exposes, in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """Expose ``read()`` as a gauge, read at every scrape."""
        self._add(_Metric(name, "gauge", help_text, read))

    def counter(self, name: str, help_text: str) -> Counter:
        """Create a counter; the caller increments the returned object."""
        counter = Counter()
        self._add(_Metric(name, "counter", help_text, lambda: counter.value))
        return counter

    def _add(self, metric: _Metric) -> None:
        if not _NAME.match(metric.name):
            raise ValueError(f"not a valid metric name: {metric.name!r}")
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric

    def names(self) -> list[str]:
        """The registered metric names."""
        return list(self._metrics)

    def render(self) -> str:
        """The exposition text of every metric; one broken reader never hides the others."""
        lines: list[str] = []
        for metric in self._metrics.values():
            try:
                value = float(metric.read())
            except Exception:
                _LOGGER.exception("metric %s cannot be read", metric.name)
                continue
            help_text = metric.help.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"# HELP {metric.name} {help_text}")
            lines.append(f"# TYPE {metric.name} {metric.kind}")
            lines.append(f"{metric.name} {_format(value)}")
        return "\n".join(lines) + "\n"


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


class MetricsServer:
    """Serves ``GET /metrics`` from a registry on one loopback address."""

    def __init__(self, registry: MetricsRegistry, host: str, port: int) -> None:
        self.registry = registry
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; return the port (useful when 0 asked for a free one)."""
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=MAX_REQUEST_LINE
        )
        port: int = self._server.sockets[0].getsockname()[1]
        self.port = port
        _LOGGER.info("metrics on http://%s/metrics", _host_port(self.host, port))
        return port

    async def serve(self) -> None:
        """Start (if needed) and serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    request = await reader.readline()
                    # Skip the headers: nothing in them changes the answer.
                    while (await reader.readline()).strip():
                        pass
            except (TimeoutError, ValueError, ConnectionError):
                return  # slow, oversized or vanished client: nothing to answer
            parts = request.decode("latin-1").split()
            if len(parts) < 2 or parts[0] not in ("GET", "HEAD"):
                status, body = "405 Method Not Allowed", "only GET\n"
            elif parts[1].split("?", 1)[0] not in ("/metrics", "/"):
                status, body = "404 Not Found", "try /metrics\n"
            else:
                status, body = "200 OK", self.registry.render()
            data = body.encode()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head if parts and parts[0] == "HEAD" else head + data)
            try:
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await writer.drain()
            except (TimeoutError, ConnectionError):
                return
        finally:
            writer.close()


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
