"""bench/fanout.py's subscribers: many lightweight receivers in one process, driven by stdin.

Usage: fanout_receivers.py HOST PORT DOMAIN CA USER[,USER...]   (password ``pass``)

One :class:`common.RawClient` per user (STARTTLS, PLAIN, bind, then it only
counts the ``v`` values that arrive).  Commands, one per line on stdin, each
answered by one line on stdout:

- ``connect`` -> ``connected N``
- ``events HUB NODE_ID FIRST COUNT``: an XEP-0323 IoT-events subscription of
  clients FIRST..FIRST+COUNT-1 to the hub's device -> ``subscribed N``
- ``pubsub SERVICE NODE FIRST COUNT``: an XEP-0060 subscription of those
  clients to the node -> ``subscribed N``
- ``pep HUB NODE FIRST COUNT``: a presence subscription to the hub, then (once
  the hub approved it) a subscription to its PEP node -> ``subscribed N``
- ``measure FROM TOTAL START RATE COUNT``: count values FROM..FROM+TOTAL-1 at
  the first COUNT clients from now on; value ``FROM+i`` was written at
  ``START + i/RATE`` (``time.monotonic()``, the same clock in every
  process) -> ``measuring``
- ``report`` -> one JSON object: deliveries, the fewest and most values one
  client got, the last arrival, and the lag of every delivery (percentiles)
- ``quit``
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RawClient

PUBSUB = "http://jabber.org/protocol/pubsub"
EVENTS = "urn:xmpp:iot:events"
CONNECTING_AT_ONCE = 25  # logins are CPU work for the server; a few at a time


class Measure:
    """What arrives of one step's values: counts per client and a lag histogram in ms."""

    def __init__(self, first: int, total: int, start: float, rate: float, count: int) -> None:
        self.first, self.total, self.start, self.rate = first, total, start, rate
        self.count = count
        self.got = [0] * count
        self.last = 0.0
        self.lags_ms: dict[int, int] = {}

    def arrived(self, index: int, value: int) -> None:
        offset = value - self.first
        if not 0 <= offset < self.total:
            return
        now = time.monotonic()
        self.got[index] += 1
        self.last = max(self.last, now)
        lag = int((now - self.start - offset / self.rate) * 1000)
        self.lags_ms[lag] = self.lags_ms.get(lag, 0) + 1

    def report(self) -> dict[str, object]:
        return {
            "deliveries": sum(self.got),
            "fewest": min(self.got, default=None),
            "last": self.last,
            "lags_ms": sorted(self.lags_ms.items()),
        }


async def pep_subscribe(client: RawClient, hub: str, node: str) -> None:
    """Ask to see the hub's presence (PEP's access model), subscribe once it is approved."""
    client._send(f"<presence type='subscribe' to='{hub}'/>")
    payload = f"<pubsub xmlns='{PUBSUB}'><subscribe node='{node}' jid='{client.jid}'/></pubsub>"
    async with asyncio.timeout(60):
        for attempt in range(1000):
            try:
                await client.iq(hub, payload, f"pep{attempt}", 30, kind="set")
                return
            except RuntimeError:  # not approved yet: the hub answers the request soon
                await asyncio.sleep(0.2)


async def main(argv: list[str]) -> None:
    host, port, domain, ca, users = argv[:5]
    server = SimpleNamespace(host=host, port=int(port), domain=domain, ca_file=Path(ca))
    server.jid = lambda user: f"{user}@{domain}"
    clients = [RawClient(server, user) for user in users.split(",") if user]  # type: ignore[arg-type]
    measure: Measure | None = None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def each(work: list[object]) -> None:
        gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

        async def one(job: object) -> None:
            async with gate:
                await job  # type: ignore[misc]

        await asyncio.gather(*(one(job) for job in work))

    try:
        while line := (await reader.readline()).decode():
            command, *args = line.split()
            if command == "connect":
                await each([c.connect() for c in clients])
                answer(f"connected {len(clients)}")
            elif command == "pep":
                hub, node, first, count = args[0], args[1], int(args[2]), int(args[3])
                await each([pep_subscribe(c, hub, node) for c in clients[first : first + count]])
                answer(f"subscribed {count}")
            elif command in ("events", "pubsub"):
                target, node, first, count = args[0], args[1], int(args[2]), int(args[3])
                chosen = clients[first : first + count]
                if command == "events":
                    payload = f"<subscribe xmlns='{EVENTS}' seqnr='1'><node nodeId='{node}'/>"
                    jobs = [c.iq(target, payload + "</subscribe>", "ev", 30) for c in chosen]
                else:
                    jobs = [
                        c.iq(
                            target,
                            f"<pubsub xmlns='{PUBSUB}'><subscribe node='{node}' jid='{c.jid}'/>"
                            "</pubsub>",
                            "ps",
                            30,
                            kind="set",
                        )
                        for c in chosen
                    ]
                await each(jobs)  # type: ignore[arg-type]
                answer(f"subscribed {len(chosen)}")
            elif command == "measure":
                first, total = int(args[0]), int(args[1])
                start, rate, count = float(args[2]), float(args[3]), int(args[4])
                measure = Measure(first, total, start, rate, count)
                for index, client in enumerate(clients):
                    client.values.clear()
                    client.on_value = (
                        (lambda v, i=index, m=measure: m.arrived(i, v)) if index < count else None
                    )
                answer("measuring")
            elif command == "report":
                answer(json.dumps(measure.report() if measure else {}))
            elif command == "quit":
                break
    finally:
        for client in clients:
            await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
