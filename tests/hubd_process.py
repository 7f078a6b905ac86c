"""Run ``hubd run`` as a real child process against a test Prosody."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

from hubd.testing.prosody import ProsodyServer

DEFAULT_DEVICES = """
  - id: porch-light
    name: Porch light
    driver: gpio.output
    pin: 17
  - id: front-door
    driver: gpio.input
    pin: 27
    pull_up: true
"""

#: The default devices and a PWM dimmer (a numeric writable field).
WITH_DIMMER = (
    DEFAULT_DEVICES
    + """
  - id: dimmer
    name: Hall dimmer
    driver: gpio.pwm
    pin: 18
"""
)


def _lists(lists: dict[str, list[str]]) -> str:
    # Indented for the dedent of the header: its lines start at column 12.
    return "\n            ".join(f"  {role}: [{', '.join(jids)}]" for role, jids in lists.items())


class HubdProcess:
    """One hubd daemon in a child process, its log in a file."""

    def __init__(
        self,
        workdir: Path,
        server: ProsodyServer,
        *,
        password: str = "hubpass",
        port: int | None = None,
        devices: str = DEFAULT_DEVICES,
        verbose: bool = False,
        extra_env: dict[str, str] | None = None,
        extra_config: str = "",
        provisioning: str | None = None,
        access_extra: str = "",
        account: str = "hub",
        access_lists: dict[str, list[str]] | None = None,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.password = password
        self.jid = server.jid(account) + "/hubd"
        # access_lists: owners/controllers/readers instead of alice/carol/bob.
        lists = access_lists or {
            "owners": [server.jid("alice")],
            "controllers": [server.jid("carol")],
            "readers": [server.jid("bob")],
        }
        (workdir / "password").write_text(password + "\n")
        (workdir / "password").chmod(0o600)
        self.config_file = workdir / "config.yaml"
        header = textwrap.dedent(
            f"""\
            xmpp:
              jid: {server.jid(account)}
              password_file: password
              server: {server.host}
              port: {port or server.port}
              ca_file: {server.ca_file}
            access:
            {_lists(lists)}
            state_dir: state
            gpio:
              pin_factory: mock
            devices:"""
        )
        # extra_config: more top-level sections (e.g. ``ble: {replay: FILE}``).
        extra = textwrap.dedent(extra_config).strip()
        # access_extra: more keys under ``access:`` (e.g. ``ask_owners: true``).
        if access_extra:
            header = header.replace(
                "state_dir: state",
                textwrap.indent(textwrap.dedent(access_extra).strip(), "  ") + "\nstate_dir: state",
            )
        if provisioning:
            header = header.replace(
                "state_dir: state", f"  provisioning: {provisioning}\nstate_dir: state"
            )
        self.config_file.write_text(
            header + devices.rstrip() + "\n" + (extra + "\n" if extra else "")
        )
        self.log_file = workdir / "hubd.log"
        self.verbose = verbose
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> None:
        """Start ``python -m hubd run``."""
        args = [sys.executable, "-m", "hubd", "run", "-c", str(self.config_file)]
        if self.verbose:
            args.append("-v")
        env = {**os.environ, **self.extra_env}
        env.pop("JOURNAL_STREAM", None)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)

    @contextlib.asynccontextmanager
    async def running(self, ready: str = r"connected to ") -> AsyncIterator[HubdProcess]:
        """Started, and ``ready`` (a regex) logged; stopped on leaving, even when not ready."""
        self.start()
        try:
            await self.wait_for_log(ready)
            yield self
        finally:
            await self.stop()

    def log(self) -> str:
        """Everything hubd printed so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    async def wait_for_log(
        self,
        pattern: str,
        timeout: float = 15.0,  # noqa: ASYNC109
        count: int = 1,
        since: int | None = None,
    ) -> str:
        """Wait until ``pattern`` (a regex) appears ``count`` times in the log since the mark
        (or since the offset ``since``, a ``len(log())`` taken earlier)."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    text = self.log()[self._offset if since is None else since :]
                    if len(regex.findall(text)) >= count:
                        return text
                    if self.proc is not None and self.proc.poll() is not None:
                        raise AssertionError(f"hubd exited ({self.proc.returncode}):\n{self.log()}")
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in hubd's log:\n{self.log()}") from None

    def mark(self) -> None:
        """Make later waits look only at what is logged from now on."""
        self._offset = len(self.log())

    async def wait_exit(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """Wait for the process to end and return its status."""
        assert self.proc is not None
        proc = self.proc
        return await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout)

    async def stop(self, timeout: float = 15.0) -> int:  # noqa: ASYNC109
        """SIGTERM, then wait; SIGKILL if it does not stop in time."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await self.wait_exit(timeout)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"hubd did not stop on SIGTERM:\n{self.log()}") from None
