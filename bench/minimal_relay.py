"""The practical limit for hubd's event path: read a serial line, send it as a message.

A bare slixmpp program with no model, no store and no subscriptions, run as
its own process like hubd.  Usage: minimal_relay.py JID PASSWORD HOST PORT CA TTY TO
"""

from __future__ import annotations

import asyncio
import os
import sys
import termios
import tty

import slixmpp


async def main(jid: str, password: str, host: str, port: int, ca: str, path: str, to: str) -> None:
    client = slixmpp.ClientXMPP(jid, password)
    client.ca_certs = ca
    client.enable_direct_tls = False
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _e: started.set_result(None))
    client.connect(host, port)
    await asyncio.wait_for(started, 10)
    client.send_presence()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIFLUSH)
    buffer = bytearray()

    def readable() -> None:
        buffer.extend(os.read(fd, 4096))
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            client.send_message(mto=slixmpp.JID(to), mbody=line.decode(), mtype="normal")

    asyncio.get_running_loop().add_reader(fd, readable)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    jid, password, host, port, ca, path, to = sys.argv[1:8]
    asyncio.run(main(jid, password, host, int(port), ca, path, to))
