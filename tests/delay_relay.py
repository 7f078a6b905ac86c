"""A TCP relay that delays each direction, with jitter, keeping the order of the bytes.

This kernel has no ``netem`` queueing discipline, so a slow radio link is
played here: every chunk read from one side is written to the other after
``delay`` seconds, give or take ``jitter``, never before the chunk before it
(TCP keeps order, and so must the link).  Loss and blackholes are kernel
drops (iptables in the test's network namespace), on the relay's port.

``SIGUSR1`` resets every connection it carries on both sides (TCP RST): a link
flap that the access point or a NAT answers with resets.

Run: ``python tests/delay_relay.py LISTEN_PORT TARGET_PORT DELAY JITTER``;
it prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import struct
import sys

CHUNK = 65536


class Link:
    """One relayed connection: two delayed directions."""

    def __init__(self, delay: float, jitter: float, rng: random.Random) -> None:
        self.delay = delay
        self.jitter = jitter
        self.rng = rng
        self.writers: list[asyncio.StreamWriter] = []

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        last = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                due = loop.time() + self.delay + self.rng.uniform(-self.jitter, self.jitter)
                last = max(due, last)
                queue.put_nowait((last, data))
                if not data:
                    break
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender

    def reset(self) -> None:
        for writer in self.writers:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()


async def main(listen: int, target: int, delay: float, jitter: float) -> None:
    rng = random.Random(16)
    links: set[Link] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = Link(delay, jitter, rng)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.transport.abort()
            return
        link.writers = [writer, up_writer]
        links.add(link)
        try:
            await asyncio.gather(link.pump(reader, up_writer), link.pump(up_reader, writer))
        finally:
            links.discard(link)
            for w in link.writers:
                w.transport.abort()

    def reset_all() -> None:
        for link in tuple(links):
            link.reset()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, reset_all)
    server = await asyncio.start_server(serve, "127.0.0.1", listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port, upstream, mean, spread = sys.argv[1:5]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(port), int(upstream), float(mean), float(spread)))
