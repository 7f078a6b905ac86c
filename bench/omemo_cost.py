"""OMEMO's cost: an encrypted chat ``read`` against a plaintext one, same hub, same run.

Starts a throwaway Prosody (with PEP) and ``hubd run`` with OMEMO on (one
simulated GPIO output), then, alternately, times the round trip of a chat
``read lamp`` as a person's client sees it, from sending to having the answer:

* plaintext: bob (a bare slixmpp client) sends the line, waits for the reply;
* encrypted: alice (slixmpp with slixmpp-omemo, legacy OMEMO 0.3 as the phone
  clients speak it, tests/omemo_client.py) encrypts the line, sends it, waits
  for the encrypted reply and decrypts it.  So the figure includes both ends'
  crypto: the hub decrypts and encrypts, the client encrypts and decrypts.

The first encrypted exchange (the key exchange, bundles fetched from PEP) is
left out with the warm-up rounds.  Then hubd's resident memory (VmRSS, after
the commands and a settle) with OMEMO on, against a second hubd with
``omemo: {enabled: false}`` that answered the same plaintext commands.
Last, three starts of each, in turn: seconds from spawn to ``connected``
(OMEMO's own set-up, keys and PEP, runs in a task after that).
Prints medians, p95s and the ratios.  Usage: ``python bench/omemo_cost.py [-n 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BENCH, Hubd, Row, hub_config, load, make_server, rss_mib, run_alone, wait_log

from hubd.testing.prosody import ProsodyServer

sys.path.insert(0, str(BENCH.parent / "tests"))

DEVICES = "  - {id: lamp, driver: gpio.output, pin: 17}\n"
ANSWER = "lamp: state off"
SETTLE = 3.0


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def round_trips(server: ProsodyServer, work: Path, rounds: int) -> dict[str, list[float]]:
    from omemo_client import NS_OLDMEMO, connect_omemo_client
    from slixmpp import JID
    from xmpp_client import connect_client

    hub = server.jid("hub")

    def sealed_answer(message: Any) -> bool:
        return (
            message["from"].bare == hub
            and message.xml.find(f"{{{NS_OLDMEMO}}}encrypted/{{{NS_OLDMEMO}}}payload") is not None
        )

    alice = await connect_omemo_client(server, "alice", "pass", work / "alice-omemo.json")
    bob = await connect_client(server, "bob", "pass", resource="plain")
    samples: dict[str, list[float]] = {"plaintext": [], "encrypted": [], "client crypto": []}
    try:
        for index in range(rounds + 3):
            # Alternate, so that a busy moment of the shared machine hits both alike.
            order = ("plaintext", "encrypted") if index % 2 == 0 else ("encrypted", "plaintext")
            for name in order:
                start = time.perf_counter()
                if name == "encrypted":
                    message = alice.make_message(mto=JID(hub), mtype="chat")
                    message["body"] = "read lamp"
                    sealed, _ = await alice.omemo.encrypt_message(message, JID(hub))
                    encrypted = time.perf_counter()
                    sealed.send()
                    stanza = await alice.wait_message(sealed_answer, timeout=15)
                    received = time.perf_counter()
                    decrypted, _ = await alice.omemo.decrypt_message(stanza)
                    text = str(decrypted["body"])
                    crypto = (encrypted - start) + (time.perf_counter() - received)
                else:
                    bob.send_message(mto=hub, mbody="read lamp", mtype="chat")
                    reply = await bob.wait_message(
                        lambda m: m["from"].bare == hub and bool(m["body"]), timeout=15
                    )
                    text = str(reply["body"])
                elapsed = time.perf_counter() - start
                if not text.startswith(ANSWER):
                    raise RuntimeError(f"{name} read answered {text!r}")
                if index >= 3:  # warm-up: the key exchange, Prosody's first deliveries
                    samples[name].append(elapsed)
                    if name == "encrypted":
                        samples["client crypto"].append(crypto)
    finally:
        await alice.disconnect_and_wait()
        await bob.disconnect_and_wait()
    return samples


async def plaintext_reads(server: ProsodyServer, rounds: int) -> None:
    from xmpp_client import connect_client

    hub = server.jid("hub")
    bob = await connect_client(server, "bob", "pass", resource="plain")
    try:
        for _ in range(rounds):
            bob.send_message(mto=hub, mbody="read lamp", mtype="chat")
            await bob.wait_message(lambda m: m["from"].bare == hub and bool(m["body"]), timeout=15)
    finally:
        await bob.disconnect_and_wait()


def startups(hubs: dict[str, tuple[Path, Path]], rounds: int = 3) -> dict[str, float]:
    """Median seconds from spawn to the status line's ``connected``, each hub in turn."""
    seen: dict[str, list[float]] = {name: [] for name in hubs}
    for _ in range(rounds):
        for name, (folder, config) in hubs.items():
            hubd = Hubd(folder, config)
            try:
                seen[name].append(hubd.wait_connected())
            finally:
                hubd.stop()
    return {name: statistics.median(values) for name, values in seen.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--rounds", type=int, default=50)


def run(args: argparse.Namespace) -> list[Row]:
    if importlib.util.find_spec("slixmpp_omemo") is None:
        return [Row("OMEMO cost", "not measured: the omemo extra is not installed", met=None)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(work, ["alice", "bob"])
        with server:
            on_dir, off_dir = work / "on", work / "off"
            on_dir.mkdir()
            off_dir.mkdir()
            gpio = "gpio: {pin_factory: mock}\n"
            on_config = hub_config(on_dir, server, DEVICES, gpio, log_level="info")
            on = Hubd(on_dir, on_config)
            try:
                on.wait_connected()
                wait_log(on_dir / "hubd.log", "OMEMO ready in ")
                samples = asyncio.run(round_trips(server, work, args.rounds))
                time.sleep(SETTLE)  # let the allocator settle before reading VmRSS
                rss_on = rss_mib(on.pid)
            finally:
                on.stop()
            off_config = hub_config(off_dir, server, DEVICES, gpio + "omemo: {enabled: false}\n")
            off = Hubd(off_dir, off_config)
            try:
                off.wait_connected()
                asyncio.run(plaintext_reads(server, 2 * (args.rounds + 3)))
                time.sleep(SETTLE)
                rss_off = rss_mib(off.pid)
            finally:
                off.stop()
            starts = startups({"on": (on_dir, on_config), "off": (off_dir, off_config)})
    plain, sealed, client = samples["plaintext"], samples["encrypted"], samples["client crypto"]
    ratio = statistics.median(sealed) / statistics.median(plain)
    # What is left of an encrypted round trip without the client's crypto, beyond a plaintext one.
    hub_share = statistics.median(
        [total - own for total, own in zip(sealed, client, strict=True)]
    ) - statistics.median(plain)
    ratio95 = percentile(sealed, 0.95) / percentile(plain, 0.95)
    print(f"chat 'read lamp' round trip, {len(plain)} rounds each, loopback Prosody")
    print(f"{'':14}{'median ms':>12}{'p95 ms':>12}")
    for name, values in samples.items():
        print(
            f"{name:14}{statistics.median(values) * 1e3:12.1f}"
            f"{percentile(values, 0.95) * 1e3:12.1f}"
        )
    print(f"ratio encrypted/plaintext: median {ratio:.2f}x, p95 {ratio95:.2f}x")
    print(f"the hub's share beyond plaintext: {hub_share * 1e3:.1f} ms")
    print(f"hubd RSS: OMEMO on {rss_on:.1f} MiB, off {rss_off:.1f} MiB")
    print(f"spawn to connected: OMEMO on {starts['on']:.2f} s, off {starts['off']:.2f} s")
    return [
        Row(
            f"chat read round trip, OMEMO 0.3 vs plaintext, median of {len(sealed)} "
            f"(load {load()})",
            f"{statistics.median(sealed) * 1e3:.1f} ms (p95 {percentile(sealed, 0.95) * 1e3:.1f})",
            f"plaintext {statistics.median(plain) * 1e3:.1f} ms"
            f" (p95 {percentile(plain, 0.95) * 1e3:.1f})",
            f"{ratio:.2f}x (p95 {ratio95:.2f}x)",
        ),
        Row(
            "of which the client's own encrypt + decrypt (slixmpp-omemo), median",
            f"{statistics.median(client) * 1e3:.1f} ms",
        ),
        Row(
            "of which the hub's decrypt + encrypt (the rest beyond plaintext), median",
            f"{hub_share * 1e3:.1f} ms",
        ),
        Row(
            "hubd RSS after the commands, OMEMO on vs off",
            f"{rss_on:.1f} MiB",
            f"off {rss_off:.1f} MiB",
            f"+{rss_on - rss_off:.1f} MiB ({rss_on / rss_off:.2f}x)",
        ),
        Row(
            "hubd spawn to connected, OMEMO on vs off, median of 3 (setup runs after it)",
            f"{starts['on']:.2f} s",
            f"off {starts['off']:.2f} s",
            f"{starts['on'] / starts['off']:.2f}x",
        ),
    ]


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
