"""The baseline process: a bare slixmpp client, connected, doing nothing else (or sending).

Usage: bare_client.py JID PASSWORD HOST PORT CA [--plugins NAME[,NAME...]] [--send N TO[,TO...]]

Prints ``ready`` once the session is up (connect, session, presence).  With
no ``--plugins`` it registers none beyond the stream features slixmpp's
``ClientXMPP`` always loads: the floor hubd's memory is compared with.
``--plugins`` registers those XEP plugins first (the ones hubd needs: the
second baseline, which shows how much of hubd's cost is slixmpp's own).
Idle, it then waits (its resident memory and wake-ups are the floor).  With
``--send`` it waits for a line on stdin, sends N messages (bodies 0..N-1,
round robin over the recipients) as fast as slixmpp writes them, prints
``sent SECONDS`` and waits: the ceiling of one slixmpp process sending stanzas.
"""

from __future__ import annotations

import asyncio
import sys
import time

import slixmpp


async def main(argv: list[str]) -> None:
    jid, password, host, port, ca = argv[:5]
    options = argv[5:]
    client = slixmpp.ClientXMPP(jid, password)
    if "--plugins" in options:
        for plugin in options[options.index("--plugins") + 1].split(","):
            client.register_plugin(plugin)
    client.ca_certs = ca
    client.enable_direct_tls = False
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _e: started.set_result(None))
    client.connect(host, int(port))
    await asyncio.wait_for(started, 30)
    client.send_presence()
    print("ready", flush=True)
    if "--send" in options:
        at = options.index("--send")
        count, targets = int(options[at + 1]), [slixmpp.JID(t) for t in options[at + 2].split(",")]
        await asyncio.to_thread(sys.stdin.readline)
        start = time.perf_counter()
        for i in range(count):
            client.send_message(mto=targets[i % len(targets)], mbody=str(i), mtype="normal")
            if i % 100 == 99:
                await asyncio.sleep(0)  # let the stream write what is queued
        print(f"sent {time.perf_counter() - start:.3f}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
