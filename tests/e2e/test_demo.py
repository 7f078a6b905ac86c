"""The README's first command: the demo starts, a client logs in as told, and talks to the hub.

``python -m hubd.testing.demo`` is what ``./dev demo`` runs once everything is
installed.  It runs here as a real process with its own Prosody on a free
port; the test reads the account from what the demo prints, connects as a
person would, and stops the demo as Ctrl-C would.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

from slixmpp import JID
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer, find_free_port

HUB = "hub@localhost"


async def _read_until(stream: asyncio.StreamReader, needle: str, timeout: float = 60) -> str:  # noqa: ASYNC109
    seen = ""
    async with asyncio.timeout(timeout):
        while needle not in seen:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"the demo ended before {needle!r}:\n{seen}")
            seen += line.decode(errors="replace")
    return seen


async def _from_hub(client: TestClient, contains: str) -> str:
    """The next message from the hub that contains ``contains``."""
    message = await client.wait_message(
        lambda m: m["from"].bare == HUB and contains in m["body"], timeout=30
    )
    body: str = message["body"]
    return body


async def _ask(client: TestClient, text: str, contains: str) -> str:
    client.send_message(mto=JID(HUB), mbody=text, mtype="chat")
    return await _from_hub(client, contains)


async def test_the_demo_runs_and_a_client_can_use_it(tmp_path: Path) -> None:
    port = find_free_port()
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hubd.testing.demo",
        "--dir",
        str(tmp_path / "demo"),
        "--port",
        str(port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert demo.stdout is not None
    client: TestClient | None = None
    try:
        text = await _read_until(demo.stdout, "Ctrl-C stops it")
        text += await _read_until(demo.stdout, "=====")
        jid = re.search(r"JID:\s+(\S+)", text)
        password = re.search(r"password:\s+(\S+)", text)
        assert jid is not None, text
        assert password is not None, text
        assert f"port: {port}" in text
        # The same server the demo started: its folder, its throwaway CA.
        server = ProsodyServer(tmp_path / "demo" / "prosody", port=port)
        user = jid.group(1).split("@", 1)[0]
        client = await connect_client(server, user, password.group(1), timeout=30)
        # hubd may still be logging in: the server keeps a message to its bare
        # JID until it is there, and it answers then.
        listing = await _ask(client, "list", "devices")
        assert listing.startswith("8 devices"), listing
        assert "- weather (Weather station)" in listing
        # The simulated serial weather station speaks through the real driver:
        # its next reading arrives as a watched event.
        watching = await _ask(client, "watch weather temperature", "Watching")
        assert watching.startswith("Watching Weather station"), watching
        event = await _from_hub(client, "Weather station: temperature")
        assert re.match(r"Weather station: temperature \d+(\.\d)? °C", event), event
        sent = await _ask(client, "set weather send hello", "Weather station")
        assert sent == "Weather station: send hello", sent
        lit = await _ask(client, "set porch-light on", "Porch light")
        assert lit == "Porch light: state on", lit
    finally:
        if client is not None:
            await client.disconnect_and_wait()
        if demo.returncode is None:
            demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(demo.wait(), 30) == 0
    assert not (tmp_path / "demo" / "hubd" / "ttyWEATHER").exists(), "the demo cleans up"
