"""Hub processes for the tests of several hubs (``remotes:``): remote hubs and their entries.

A remote hub runs under its own account (``garage-hub`` unless told) and lets
the front hub in through its own ``access:`` lists; the front hub names it in
``remotes:`` (:func:`remotes_yaml`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from accounts import ACCOUNTS
from hubd_process import HubdProcess
from pty_device import Pty


def remotes_yaml(source_id: str, jid: str, *, timeout: float = 5, access: str = "") -> str:
    """A ``remotes:`` section naming one remote hub (``access``: its grants, as YAML)."""
    entry = f"remotes:\n  - id: {source_id}\n    jid: {jid}\n    timeout: {timeout:g}\n"
    return entry + (f"    access: {access}\n" if access else "")


def remote_hub(
    server: Any,
    workdir: Path,
    devices: str,
    lists: dict[str, list[str]],
    *,
    account: str = "garage-hub",
    **options: Any,
) -> HubdProcess:
    """A remote hub (not started) under ``account``, its ``access:`` being ``lists``."""
    return HubdProcess(
        workdir,
        server,
        account=account,
        password=ACCOUNTS[account],
        devices=devices,
        access_lists=lists,
        **options,
    )


@contextmanager
def plugged(path: Path) -> Iterator[Pty]:
    """A serial device on a pseudo-terminal at ``path``, unplugged afterwards."""
    pty = Pty(path)
    pty.plug()
    try:
        yield pty
    finally:
        pty.unplug()
