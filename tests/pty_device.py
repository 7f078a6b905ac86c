"""A serial device played on the master side of a pseudo-terminal, for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path


class Pty:
    """A device on the master side of a pty; ``link`` is the path hubd is told to open."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = self.slave = -1
        self.received = bytearray()
        self.arrived = asyncio.Event()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.link)
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def unplug(self) -> None:
        if self.master >= 0:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            os.close(self.slave)
        self.master = self.slave = -1

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def _readable(self) -> None:
        try:
            self.received += os.read(self.master, 4096)
        except OSError:
            return
        self.arrived.set()

    async def wait_received(self, needle: bytes) -> None:
        async with asyncio.timeout(10):
            while needle not in self.received:
                self.arrived.clear()
                await self.arrived.wait()
