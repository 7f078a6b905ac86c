"""A real terminal client: Debian's Profanity, driven under tmux, talks to a real hubd.

Profanity runs in a detached tmux session of its own (a private tmux socket,
no user config), with HOME and the XDG directories in the test's temporary
directory, so its settings and logs stay there.  It verifies the server's
certificate against the throwaway CA (``/tls certpath`` to a hashed CA
directory), exactly as it would a real server's.  Every wait polls the
screen (``capture-pane``) until a pattern shows, with a deadline.

The conversation is the one shown in README.md ("People: chat and ad-hoc
commands"); the screen is saved to ``profanity-screen.txt`` in the test's
temporary directory for anyone who wants to look.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess

from hubd.testing.prosody import DEFAULT_MODULES, ProsodyServer

WIDTH, HEIGHT = 160, 50


@pytest.fixture
def adhoc_prosody(tmp_path: Path) -> Iterator[ProsodyServer]:
    """A Prosody that also announces ad-hoc commands (Profanity's /cmd asks the server first)."""
    server = ProsodyServer(tmp_path / "prosody", modules=(*DEFAULT_MODULES, "adhoc"))
    for user, password in ACCOUNTS.items():
        server.register(user, password)
    with server:
        yield server


@pytest.fixture
async def hub(adhoc_prosody: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    async with HubdProcess(tmp_path / "hubd", adhoc_prosody).running() as process:
        yield process


class Terminal:
    """Profanity in a detached tmux session; type into it and read its screen."""

    def __init__(self, workdir: Path) -> None:
        for tool in ("tmux", "profanity"):
            if shutil.which(tool) is None:
                raise AssertionError(
                    f"{tool} is not installed: apt-get install {tool} (./dev does)"
                )
        self.workdir = workdir
        home = workdir / "home"
        home.mkdir(parents=True)
        # A tmux server of our own, by name: a socket path under tmp_path could
        # pass the 108-byte limit of a Unix socket name.
        self.socket = f"hubd-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "LANG": "C.UTF-8",
        }
        self.started = False

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout

    def start(self) -> None:
        self.tmux(
            "new-session", "-d", "-s", "prof", "-x", str(WIDTH), "-y", str(HEIGHT), "profanity"
        )  # fmt: skip
        self.started = True

    def type(self, line: str) -> None:
        """Type ``line`` and Enter (literally: no tmux key names)."""
        self.tmux("send-keys", "-t", "prof", "-l", line)
        self.tmux("send-keys", "-t", "prof", "Enter")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "prof")

    async def wait_for(self, pattern: str, timeout: float = 15.0) -> str:  # noqa: ASYNC109
        """Wait until ``pattern`` (a regex) is on the screen; return the screen."""
        regex = re.compile(pattern)
        screen = ""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    screen = await asyncio.to_thread(self.screen)
                    if regex.search(screen):
                        return screen
                    await asyncio.sleep(0.1)  # polling a screen: there is no event to wait on
        except TimeoutError:
            raise AssertionError(f"{pattern!r} never showed; the screen:\n{screen}") from None

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                ["tmux", "-L", self.socket, "kill-server"],
                env=self.env,
                capture_output=True,
                timeout=10,
                check=False,
            )
            self.started = False


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path / "profanity")
    try:
        yield term
    finally:
        if term.started:
            (tmp_path / "profanity-screen.txt").write_text(term.screen())
        term.stop()


def trusted_ca_dir(server: ProsodyServer, where: Path) -> Path:
    """A CA directory as OpenSSL (libstrophe) wants it: the certificate under its hash name."""
    where.mkdir()
    shutil.copy(server.ca_file, where / "ca.pem")
    subprocess.run(["openssl", "rehash", str(where)], check=True, capture_output=True, timeout=30)
    return where


async def connect(terminal: Terminal, server: ProsodyServer, user: str) -> None:
    capath = trusted_ca_dir(server, terminal.workdir / "ca")
    terminal.start()
    await terminal.wait_for(r"Profanity\. Type /help")
    terminal.type(f"/tls certpath set {capath}")
    await terminal.wait_for(r"Certificate path set to")
    terminal.type(f"/connect {server.jid(user)} server {server.host} port {server.port} tls force")
    await terminal.wait_for(r"(?i)password")
    terminal.type(ACCOUNTS[user])
    await terminal.wait_for(rf"{re.escape(server.jid(user))}/\S+ logged in successfully")


async def test_profanity_reads_and_sets_by_chat(
    hub: HubdProcess, adhoc_prosody: ProsodyServer, terminal: Terminal
) -> None:
    await connect(terminal, adhoc_prosody, "alice")
    terminal.type("/msg hub@localhost read porch-light")
    await terminal.wait_for(r"hub@localhost/hubd: Porch light: state off \(just now\)")
    # The chat window is open now: plain lines go to the hub.
    terminal.type("watch porch-light")
    await terminal.wait_for(r"Watching Porch light \(any change\)\. Type unwatch porch-light")
    terminal.type("set porch-light state on")
    # Two lines: the reply to the set, and the watched event.
    await terminal.wait_for(
        r"hub@localhost/hubd: Porch light: state on\n(?:.*\n)*?.*"
        r"hub@localhost/hubd: Porch light: state on\n"
    )
    terminal.type("read porch")
    await terminal.wait_for(r"hub@localhost/hubd: Porch light: state on \(just now\)")
    terminal.type("set porch-light colour red")
    await terminal.wait_for(r"porch-light has no field 'colour'; fields: state\. Try: set porch-")
    await hub.wait_for_log(r"control by alice@localhost/profanity\.\S+: porch-light\.state = True")


async def test_profanity_runs_the_single_stage_commands(
    hub: HubdProcess, adhoc_prosody: ProsodyServer, terminal: Terminal
) -> None:
    await connect(terminal, adhoc_prosody, "alice")
    terminal.type(f"/cmd list {hub.jid}")
    await terminal.wait_for(r"Ad hoc commands:\n.*plot\n.*read\n.*set\n.*status")
    terminal.type(f"/cmd exec set {hub.jid}")
    await terminal.wait_for(r"Form title: Set a device")
    await terminal.wait_for(r"\[field1\] Device and field \(required\):")
    terminal.type("/field2 on")  # field1 already picks porch-light.state
    terminal.type("/form submit")
    await terminal.wait_for(r"set completed")
    terminal.type("/win 1")
    await terminal.wait_for(r"set completed\n.*Porch light: state on")
    terminal.type(f"/cmd exec status {hub.jid}")
    await terminal.wait_for(r"status completed\n.*2 devices:")
    await hub.wait_for_log(r"control by alice@localhost/profanity\.\S+: porch-light\.state = True")
