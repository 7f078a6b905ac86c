"""sd_notify on the socket: messages as systemd receives them, from a socket the test binds."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubd.core.config import load_config
from hubd.service.app import App
from hubd.service.sdnotify import Notifier


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket bound at a path, as systemd's ``NOTIFY_SOCKET`` is."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_messages_arrive_one_datagram_each(path_socket: tuple[str, socket.socket]) -> None:
    name, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": name})
    assert notifier.enabled
    assert notifier.ready("connecting... 2 devices")
    assert receive(sock) == ["READY=1", "STATUS=connecting... 2 devices"]
    assert notifier.status("connected, 2 devices")
    assert receive(sock) == ["STATUS=connected, 2 devices"]
    assert notifier.watchdog()
    assert receive(sock) == ["WATCHDOG=1"]
    assert notifier.reloading()
    reloading, monotonic = receive(sock)
    assert reloading == "RELOADING=1"
    assert monotonic.startswith("MONOTONIC_USEC=")
    assert int(monotonic.split("=", 1)[1]) > 0
    assert notifier.stopping()
    assert receive(sock) == ["STOPPING=1"]
    notifier.close()
    notifier.close()


def test_a_status_line_stays_one_line(path_socket: tuple[str, socket.socket]) -> None:
    name, sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": name})
    notifier.status("two\nlines")
    assert receive(sock) == ["STATUS=two lines"]
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"hubd-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert receive(sock) == ["WATCHDOG=1"]
        notifier.close()
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()
    assert notifier.watchdog_interval is None


def test_an_unreachable_socket_is_not_an_error(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert not notifier.status("nobody listens")
    assert not notifier.stopping()
    notifier.close()


def test_a_full_socket_never_blocks(path_socket: tuple[str, socket.socket]) -> None:
    name, _sock = path_socket
    notifier = Notifier({"NOTIFY_SOCKET": name})
    # Nobody reads: the queue fills and sends fail at once instead of blocking.
    results = [notifier.status("x" * 1000) for _ in range(2000)]
    assert results[0]
    assert not all(results)
    notifier.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert Notifier(env).watchdog_interval == expected


async def test_watchdog_health_and_status_line(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        "gpio: {pin_factory: mock}\n"
        "devices:\n  - {id: porch-light, driver: gpio.output, pin: 17}\n"
    )
    app = App(load_config(path, environ={}))
    # Not started yet counts as not online (READY waits until every node has started).
    assert app.status_text() == "connecting... 1 device, 1 offline"
    assert app.health_problem(late=0.01, period=15.0) is None
    # The XMPP server being unreachable is no health problem: nothing here asks for it.
    problem = app.health_problem(late=16.0, period=15.0)
    assert problem == "the event loop was blocked for 16.0 s"
    ended = asyncio.create_task(asyncio.sleep(0), name="xmpp")
    await ended
    app._essential = [ended]
    assert app.health_problem(late=0.0, period=15.0) == "task 'xmpp' has ended"
