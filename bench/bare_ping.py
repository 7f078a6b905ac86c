"""The one-shot baseline: a bare slixmpp process that connects, pings the server, and leaves.

Usage: bare_ping.py JID PASSWORD HOST PORT CA

What any slixmpp script costs at the least (interpreter, slixmpp's import,
TCP, STARTTLS, SASL, bind, one IQ round trip, the end of the stream), the
floor ``hubctl read`` is compared with in bench/oneshot.py.  Exits 0 once the
stream is closed, 1 if anything failed.
"""

from __future__ import annotations

import asyncio
import sys

import slixmpp


async def main(jid: str, password: str, host: str, port: str, ca: str) -> int:
    client = slixmpp.ClientXMPP(f"{jid}/bare-ping", password)
    client.register_plugin("xep_0199")
    client.ca_certs = ca
    client.enable_direct_tls = False
    client.enable_plaintext = False
    started = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _e: started.set_result(None))
    client.connect(host, int(port))
    await asyncio.wait_for(started, 30)
    await client.plugin["xep_0199"].send_ping(slixmpp.JID(client.boundjid.domain), timeout=10)
    await client.disconnect(wait=2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(*sys.argv[1:6])))
