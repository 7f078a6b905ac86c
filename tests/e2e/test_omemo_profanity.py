"""OMEMO with a real terminal client: Debian's Profanity (built with OMEMO) under tmux.

Profanity is driven as in tests/e2e/test_profanity.py (its own tmux server,
HOME in the test's temporary directory, the server's certificate checked
against the throwaway CA).  Alice adds the hub as a contact and allows the
hub's request for her presence back (Profanity publishes her keys for
contacts only), makes her keys (``/omemo gen``), trusts
blindly (``/omemo trustmode blind``; by hand she would ``/omemo trust`` the
fingerprint ``hubd omemo fingerprint`` prints), starts OMEMO with the hub and
types ``read``.  The hub takes commands encrypted only (``require: true``),
so an answer with the value proves the command went encrypted; the answer
itself shows on her screen decrypted, marked with Profanity's OMEMO sign
(``~``; a plaintext line has ``-``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from omemo_client import connect_omemo_client
from test_profanity import HEIGHT, WIDTH, Terminal, connect

from hubd.testing.prosody import ProsodyServer

HUB = "hub@localhost"
# slixmpp-omemo 2.2 reaches plugins the way slixmpp 1.17 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing plugins through the XMPP object:DeprecationWarning"
)
OMEMO_READY = r"OMEMO ready in [0-9.]+ s: device (\d+), fingerprint ([0-9a-f ]+)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ProsodyServer]:
    """A Prosody of this test's own (with PEP, where OMEMO keys live)."""
    made = ProsodyServer(tmp_path / "prosody")
    for user, password in ACCOUNTS.items():
        made.register(user, password)
    with made:
        yield made


@pytest.fixture
async def hub(server: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    process = HubdProcess(tmp_path / "hubd", server, extra_config="omemo:\n  require: true\n")
    async with process.running(OMEMO_READY):
        yield process


class DebugTerminal(Terminal):
    """Profanity logging at DEBUG: its log (in the test's HOME) shows each OMEMO step."""

    def start(self) -> None:
        self.tmux(
            "new-session", "-d", "-s", "prof", "-x", str(WIDTH), "-y", str(HEIGHT),
            "profanity -l DEBUG",
        )  # fmt: skip
        self.started = True

    async def wait_for_log(self, pattern: str, timeout: float = 15.0) -> None:  # noqa: ASYNC109
        """Wait until Profanity's own log has a line matching ``pattern``."""
        log = self.workdir / "home" / ".local" / "share" / "profanity" / "logs" / "profanity.log"
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if log.exists() and regex.search(log.read_text(errors="replace")):
                        return
                    await asyncio.sleep(0.1)  # polling a file: there is no event to wait on
        except TimeoutError:
            raise AssertionError(f"{pattern!r} never in {log}") from None


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = DebugTerminal(tmp_path / "profanity")
    try:
        yield term
    finally:
        if term.started:
            (tmp_path / "profanity-screen.txt").write_text(term.screen())
        term.stop()


async def test_profanity_reads_encrypted(
    hub: HubdProcess, server: ProsodyServer, terminal: Terminal, tmp_path: Path
) -> None:
    ready = re.search(OMEMO_READY, hub.log())
    assert ready is not None
    # Alice's phone (a slixmpp-omemo client) has published her device list before:
    # Profanity 0.13 adds itself only to a list it receives, and on an account without
    # one (Prosody answers item-not-found without the legacy code='404') it publishes none.
    phone = await connect_omemo_client(
        server, "alice", ACCOUNTS["alice"], tmp_path / "alice-phone.json", resource="phone"
    )
    await phone.disconnect_and_wait()
    await connect(terminal, server, "alice")
    # She adds the hub as a contact; the hub asks for her presence in return (Profanity
    # publishes her keys for contacts only), and she allows it.
    terminal.type(f"/sub request {HUB}")
    await terminal.wait_for(rf"Received authorization request from {re.escape(HUB)}")
    terminal.type(f"/sub allow {HUB}")
    terminal.type("/omemo gen")
    await terminal.wait_for(r"OMEMO crytographic materials generated\.", timeout=60)
    terminal.type("/omemo trustmode blind")
    await terminal.wait_for(r"ALL OMEMO fingerprints will be trusted automatically")
    terminal.type(f"/omemo start {HUB}")
    # Profanity fetches the hub's device list and bundle in the background; a line typed
    # before the session exists is refused ("cannot be decrypted for any recipient").
    await terminal.wait_for_log(rf"\[OMEMO\]\[STORE\] Store session for {re.escape(HUB)}")
    terminal.type("read porch-light")
    screen = await terminal.wait_for(
        rf"~ {re.escape(HUB)}/hubd: Porch light: state off \(just now\)", timeout=30
    )
    assert "takes commands end-to-end encrypted only" not in screen
    # The hub's fingerprint as Profanity shows it is the one the hub logs (and prints).
    terminal.type(f"/omemo fingerprint {HUB}")
    shown = await terminal.wait_for(rf"{re.escape(HUB)}'s OMEMO fingerprint: [0-9a-f-]+")
    match = re.search(rf"{re.escape(HUB)}'s OMEMO fingerprint: ([0-9a-f-]+)", shown)
    assert match is not None
    assert match[1].replace("-", "") == ready[2].replace(" ", "")
