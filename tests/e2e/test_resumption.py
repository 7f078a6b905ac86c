"""XEP-0198: a cut link is resumed, not restarted (the session survives on the server)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

from hubd_process import HubdProcess

from hubd.testing.prosody import ProsodyServer, find_free_port


class TcpRelay:
    """A socat relay between hubd and Prosody that the test can cut and restore."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "socat",
            f"TCP-LISTEN:{self.listen_port},bind=127.0.0.1,reuseaddr,fork",
            f"TCP:127.0.0.1:{self.target_port}",
            start_new_session=True,
        )
        async with asyncio.timeout(10):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", self.listen_port), timeout=1):
                        return
                except OSError:
                    await asyncio.sleep(0.02)

    async def cut(self) -> None:
        """Kill the relay and every connection it carries."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
            self.proc = None


async def test_cut_link_is_resumed_with_stream_management(
    prosody: ProsodyServer, tmp_path: Path
) -> None:
    relay = TcpRelay(find_free_port(), prosody.port)
    await relay.start()
    hub = HubdProcess(tmp_path / "hubd", prosody, port=relay.listen_port, verbose=True)
    hub.start()
    try:
        await hub.wait_for_log(r"connected to .* as hub@localhost/hubd\n")
        # slixmpp enables XEP-0198 just after the session starts: a cut before
        # that is a new session by design, so cut only once it is resumable.
        await hub.wait_for_log(r"stream management enabled, resumable")
        hub.mark()
        await relay.cut()
        await relay.start()
        await hub.wait_for_log(r"lost the connection")
        await hub.wait_for_log(r"connected to .*\(session resumed\)", timeout=30)
        assert "Traceback" not in hub.log()
    finally:
        await relay.cut()
        await hub.stop()
