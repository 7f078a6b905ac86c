"""The optional Prometheus endpoint: the registry's text, the loopback server, the config key."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest
from hubd_process import HubdProcess

from hubd.core.config import load_config
from hubd.errors import ConfigError
from hubd.service.metrics import MetricsRegistry, MetricsServer
from hubd.testing.prosody import ProsodyServer, find_free_port


def test_registry_renders_prometheus_text() -> None:
    registry = MetricsRegistry()
    depth = [3]
    registry.gauge("hubd_queue_depth", "Events waiting.", lambda: depth[0])
    counter = registry.counter("hubd_things_total", "Things seen.\nTwo lines.")
    counter.inc()
    counter.inc(2)
    registry.gauge("hubd_ratio", "A ratio.", lambda: 0.25)
    assert registry.render() == (
        "# HELP hubd_queue_depth Events waiting.\n"
        "# TYPE hubd_queue_depth gauge\n"
        "hubd_queue_depth 3\n"
        "# HELP hubd_things_total Things seen.\\nTwo lines.\n"
        "# TYPE hubd_things_total counter\n"
        "hubd_things_total 3\n"
        "# HELP hubd_ratio A ratio.\n"
        "# TYPE hubd_ratio gauge\n"
        "hubd_ratio 0.25\n"
    )
    assert registry.names() == ["hubd_queue_depth", "hubd_things_total", "hubd_ratio"]


def test_registry_refuses_bad_and_duplicate_names_and_negative_counts() -> None:
    registry = MetricsRegistry()
    registry.gauge("hubd_x", "x", lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("hubd_x", "x", lambda: 1)
    with pytest.raises(ValueError, match="not a valid metric name"):
        registry.gauge("hubd-x", "x", lambda: 1)
    with pytest.raises(ValueError, match="only goes up"):
        registry.counter("hubd_y_total", "y").inc(-1)


def test_a_broken_metric_does_not_hide_the_others(caplog: pytest.LogCaptureFixture) -> None:
    registry = MetricsRegistry()
    registry.gauge("hubd_broken", "b", lambda: 1 / 0)
    registry.gauge("hubd_fine", "f", lambda: 1)
    assert registry.render().splitlines()[-1] == "hubd_fine 1"
    assert "metric hubd_broken cannot be read" in caplog.text


async def http_get(port: int, path: str, method: str = "GET") -> tuple[str, str]:
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
    head, _, body = data.decode().partition("\r\n\r\n")
    return head, body


async def test_server_answers_get_metrics_only() -> None:
    registry = MetricsRegistry()
    registry.gauge("hubd_devices", "Devices.", lambda: 2)
    server = MetricsServer(registry, "127.0.0.1", 0)
    port = await server.start()
    async with asyncio.TaskGroup() as group:
        task = group.create_task(server.serve())
        head, body = await http_get(port, "/metrics")
        assert head.startswith("HTTP/1.1 200 OK")
        assert "Content-Type: text/plain; version=0.0.4" in head
        assert "hubd_devices 2" in body
        head, _ = await http_get(port, "/elsewhere")
        assert head.startswith("HTTP/1.1 404")
        head, _ = await http_get(port, "/metrics", method="POST")
        assert head.startswith("HTTP/1.1 405")
        head, body = await http_get(port, "/metrics", method="HEAD")
        assert head.startswith("HTTP/1.1 200 OK")
        assert body == ""
        task.cancel()


CONFIG = """
xmpp:
  jid: hub@example.org
  password_file: pw
"""


@pytest.mark.parametrize(
    ("listen", "host", "port"),
    [
        ("127.0.0.1:9101", "127.0.0.1", 9101),
        ("[::1]:9200", "::1", 9200),
        ("localhost:1", "127.0.0.1", 1),
    ],
)
def test_config_accepts_loopback(tmp_path: Path, listen: str, host: str, port: int) -> None:
    (tmp_path / "pw").write_text("x\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG) + f'metrics:\n  listen: "{listen}"\n')
    metrics = load_config(path, environ={}).metrics
    assert metrics is not None
    assert (metrics.host, metrics.port) == (host, port)


def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    assert load_config(path, environ={}).metrics is None


@pytest.mark.parametrize("listen", ["0.0.0.0:9101", "192.168.1.2:9101", "127.0.0.1", "::1:x"])
def test_config_refuses_anything_but_loopback(tmp_path: Path, listen: str) -> None:
    (tmp_path / "pw").write_text("x\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(CONFIG) + f'metrics:\n  listen: "{listen}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "metrics.listen" in str(info.value.problems[0])


async def test_daemon_serves_its_metrics(prosody: ProsodyServer, tmp_path: Path) -> None:
    port = find_free_port()
    hub = HubdProcess(
        tmp_path / "hubd", prosody, extra_config=f"metrics:\n  listen: 127.0.0.1:{port}\n"
    )
    hub.start()
    try:
        await hub.wait_for_log(r"connected to ")
        await hub.wait_for_log(rf"metrics on http://127\.0\.0\.1:{port}/metrics")
        _, body = await http_get(port, "/metrics")
        values = dict(line.split(" ", 1) for line in body.splitlines() if not line.startswith("#"))
        assert values["hubd_xmpp_connected"] == "1"
        assert values["hubd_devices"] == "2"
        assert values["hubd_devices_offline"] == "0"
        assert values["hubd_driver_errors_total"] == "0"
        assert int(values["hubd_values_total"]) >= 0
    finally:
        assert await hub.stop() == 0
