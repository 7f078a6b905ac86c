"""Fan-out through PubSub against direct IoT-events delivery, in one run.

One throwaway Prosody on loopback with a ``pubsub`` component; one ``hubd
run`` with two ``serial.lines`` devices on pseudo-terminals: ``direct``,
delivered by hubd itself to XEP-0323 IoT-events subscribers (one message per
subscriber), and ``fan``, published to ``pubsub.<domain>`` (``pubsub:
{service: pubsub.<domain>, devices: [fan]}``), where the server delivers it
to the node's subscribers.  The subscribers are lightweight raw clients
(bench/common.py ``RawClient``) in four receiver processes
(bench/fanout_receivers.py), the accounts written in bulk
(hubd/testing/prosody_accounts.py).

Steps, each ``--rate`` lines per second (unless the step names its own) for
``--seconds``, then up to ``--drain`` seconds for the rest to arrive:

1. direct, 1 subscriber: the baseline of hubd's CPU per event;
2. direct, 100 subscribers;
3. pubsub, 100 subscribers at 10 lines/s (within what the server delivers);
4. pubsub, 100 subscribers;
5. pubsub, 1,000 subscribers (subscriptions only add up: this one comes last);
6. PEP, 100 subscribers: a second hubd (``hubpep``) publishing on its own
   account, the subscribers with an approved presence subscription to it.

Then the same on ejabberd (``--servers``).

Reported per step: deliveries/s at the subscribers, the values never
received (lost), the lag (median and p99 of every delivery after its line was
written, and of the last one after the last line), and the CPU seconds per
1,000 events offered of hubd and of Prosody (``/proc/<pid>/stat``).  Through
pubsub hubd coalesces per device what the server has not acknowledged yet, so
what a subscriber misses there is values the server never took, not a queue.

Usage: python bench/fanout.py [--steps direct:1,direct:100,pubsub:100,pubsub:1000]
       [--rate 1000] [--seconds 10] [--drain 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import BENCH, Hubd, Row, cpu_seconds, load, pty_pair, run_alone

from hubd.testing.ejabberd import EjabberdServer
from hubd.testing.prosody import ProsodyServer
from hubd.testing.prosody_accounts import write_accounts

WORKERS = 4
NODE = "urn:xmpp:iot:sensordata"
Server = ProsodyServer | EjabberdServer
QUIET = 3.0  # seconds without a new delivery after the last line: the step is over


def pace(fd: int, first: int, count: int, rate: float, start: float, done: list[float]) -> None:
    """Write ``count`` JSON lines, line ``i`` at ``start + i/rate`` (monotonic)."""
    sent = 0
    while sent < count:
        due = min(int((time.monotonic() - start) * rate) + 1, count)
        if due > sent:
            os.write(fd, b"".join(b'{"v": %d}\n' % (first + i) for i in range(sent, due)))
            sent = due
        else:
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))  # line `sent` is next
    done.append(time.monotonic())


class Receivers:
    """One bench/fanout_receivers.py process; client ``k + j*WORKERS`` is its ``j``-th."""

    def __init__(self, server: Server, index: int, users: list[str]) -> None:
        self.index = index
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "fanout_receivers.py"),
                server.host,
                str(server.port),
                server.domain,
                str(server.ca_file),
                ",".join(users),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def local(self, count: int) -> int:
        """How many of the first ``count`` subscribers (globally) are this process's."""
        return max(0, math.ceil((count - self.index) / WORKERS))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def answer(self, timeout: float = 120) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise RuntimeError(f"receivers {self.index}: no answer (exit {self.proc.poll()})")
        return line.strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def everyone(workers: list[Receivers], command: str) -> list[str]:
    """Send ``command`` (a function of the worker, or a line) to all, then read each answer."""
    for worker in workers:
        worker.send(command)
    return [worker.answer() for worker in workers]


@dataclass(frozen=True)
class Plan:
    """One step: ``kind:count[@rate]`` (direct, pubsub or pep; lines per second)."""

    kind: str
    count: int
    rate: float

    @classmethod
    def parse(cls, text: str, rate: float) -> Plan:
        kind, _, rest = text.partition(":")
        count, _, at = rest.partition("@")
        if kind not in ("direct", "pubsub", "pep"):
            raise ValueError(f"unknown step kind {kind!r}")
        return cls(kind, int(count), float(at) if at else rate)


@dataclass
class Step:
    server: str
    plan: Plan
    deliveries_per_s: float
    each_per_s: float
    lost: int
    lag_p50: float
    lag_p99: float
    lag_last: float
    hubd_cpu: float  # seconds per 1,000 events offered
    server_cpu: float
    server_busy: float  # share of one core while values arrived


def percentile(histogram: dict[int, int], share: float) -> float:
    """The lag (s) below which ``share`` of the deliveries arrived."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    seen = 0
    for lag, count in sorted(histogram.items()):
        seen += count
        if seen >= share * total:
            return lag / 1000
    return max(histogram) / 1000


@dataclass
class Setup:
    """One server with its hubd processes (by step kind), their ptys, and the receivers."""

    name: str
    server: Server
    hubds: dict[str, Hubd]
    fds: dict[str, int]
    workers: list[Receivers]


def measure(args: argparse.Namespace, setup: Setup, plan: Plan, first: int) -> Step:
    workers, server_pid, hubd = setup.workers, setup.server.pid or 0, setup.hubds[plan.kind]
    count, rate = plan.count, plan.rate
    total = int(rate * args.seconds)
    start = time.monotonic() + 0.5
    for worker in workers:
        worker.send(f"measure {first} {total} {start} {rate} {worker.local(count)}")
    for worker in workers:
        worker.answer()
    hubd_cpu, server_cpu = cpu_seconds(hubd.pid), cpu_seconds(server_pid)
    done: list[float] = []
    writer = threading.Thread(
        target=pace, args=(setup.fds[plan.kind], first, total, rate, start, done)
    )
    writer.start()
    deliveries, last_change = 0, time.monotonic()
    server_cpu_at_last = server_cpu
    deadline = start + args.seconds + args.drain
    reports: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        time.sleep(1.0)
        reports = [json.loads(line) for line in everyone(workers, "report")]
        now_delivered = sum(int(r["deliveries"]) for r in reports)  # type: ignore[call-overload]
        if now_delivered > deliveries:
            deliveries, last_change = now_delivered, time.monotonic()
            server_cpu_at_last = cpu_seconds(server_pid)
        if not writer.is_alive() and (
            deliveries >= total * count or time.monotonic() - last_change > QUIET
        ):
            break
    writer.join(30)
    hubd_cpu = cpu_seconds(hubd.pid) - hubd_cpu
    server_busy = server_cpu_at_last - server_cpu
    server_cpu = cpu_seconds(server_pid) - server_cpu
    last = max(float(r["last"]) for r in reports)  # type: ignore[arg-type]
    histogram: dict[int, int] = {}
    for report in reports:
        for lag, n in report["lags_ms"]:  # type: ignore[attr-defined]
            histogram[lag] = histogram.get(lag, 0) + n
    took = max(last - start, 1e-9)
    fewest = min(int(r["fewest"]) for r in reports if r["fewest"] is not None)  # type: ignore[call-overload]
    return Step(
        server=setup.name,
        plan=plan,
        deliveries_per_s=deliveries / took,
        each_per_s=fewest / took,
        lost=total * count - deliveries,
        lag_p50=percentile(histogram, 0.5),
        lag_p99=percentile(histogram, 0.99),
        lag_last=last - done[0] if done else float("nan"),
        hubd_cpu=hubd_cpu / (total / 1000),
        server_cpu=server_cpu / (total / 1000),
        # The CPU it used until the last delivery it made (sampled each second), per second.
        server_busy=server_busy / max(last_change - start, 1e-9),
    )


def hub_config(work: Path, server: Server, users: list[str], account: str, pep: bool) -> Path:
    """``account``'s hubd: ``direct`` and ``fan`` on a service, or ``fan`` alone on PEP."""
    work.mkdir(exist_ok=True)
    (work / "pw").write_text("hubpass\n")
    readers = ", ".join(server.jid(user) for user in users)
    lines = (
        f"xmpp: {{jid: {server.jid(account)}, password_file: pw, server: {server.host},\n"
        f"       port: {server.port}, ca_file: {server.ca_file}}}\n"
        # Listed one by one: a service's node is a whitelist of the readers' bare JIDs.
        f"access: {{readers: [{readers}]}}\n"
        "limits: {requests_per_minute: 60000, burst: 10000, max_subscriptions: 10000}\n"
        "events: {queue_limit: 1000000}\n"
        f"pubsub: {{service: {'pep' if pep else server.pubsub_domain}, devices: [fan]}}\n"
        "state_dir: state\nlog_level: info\ndevices:\n"
    )
    for device in ("fan",) if pep else ("direct", "fan"):
        lines += (
            f"  - {{id: {device}, driver: serial.lines, port: {work / device}, format: json,\n"
            "     fields: {v: {type: numeric}}}\n"
        )
    config = work / "config.yaml"
    config.write_text(lines)
    return config


def wait_published(hubd: Hubd, timeout: float = 60) -> None:
    """Until hubd says it publishes (the node exists, its members are set)."""
    log = hubd.work / "hubd.log"
    deadline = time.monotonic() + timeout
    while "pubsub: publishing" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or hubd.proc.poll() is not None:
            raise RuntimeError(f"hubd never published; its log: {log}")
        time.sleep(0.1)


def make_server(name: str, work: Path, users: list[str]) -> Server:
    """Prosody with its pubsub component (accounts in bulk), or ejabberd with mod_pubsub."""
    if name == "prosody":
        prosody = ProsodyServer(work / "prosody", pubsub=True)
        for account in ("hub", "hubpep"):
            prosody.register(account, "hubpass")
        write_accounts(prosody.data_dir, prosody.domain, dict.fromkeys(users, "pass"))
        return prosody
    ejabberd = EjabberdServer(work / "ejabberd")
    for account in ("hub", "hubpep"):
        ejabberd.register(account, "hubpass")
    for user in users:
        ejabberd.register(user, "pass")
    return ejabberd


def subscribe(setup: Setup, plan: Plan, already: int) -> None:
    """Subscribe subscribers ``already``..``plan.count - 1`` the way the step delivers."""
    server = setup.server
    for worker in setup.workers:
        lo, hi = worker.local(already), worker.local(plan.count)
        if plan.kind == "direct":
            worker.send(f"events {server.jid('hub')}/hubd direct {lo} {max(0, hi - lo)}")
        elif plan.kind == "pubsub":
            worker.send(f"pubsub {server.pubsub_domain} {NODE} {lo} {max(0, hi - lo)}")
        else:  # PEP reads follow presence: ask to see the hub, then subscribe
            worker.send(f"pep {server.jid('hubpep')} {NODE} {lo} {max(0, hi - lo)}")
    for worker in setup.workers:
        worker.answer()


def run_server(name: str, args: argparse.Namespace, plans: list[Plan]) -> list[Step]:
    users = [f"sub{i}" for i in range(max(p.count for p in plans))]
    results: list[Step] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = make_server(name, work, users)
        with server:
            fds = {"direct": pty_pair(work / "direct"), "pubsub": pty_pair(work / "fan")}
            hubds = {"direct": Hubd(work, hub_config(work, server, users, "hub", pep=False))}
            hubds["pubsub"] = hubds["direct"]
            if any(p.kind == "pep" for p in plans):
                config = hub_config(work / "pep", server, users, "hubpep", pep=True)
                fds["pep"] = pty_pair(work / "pep" / "fan")
                hubds["pep"] = Hubd(work / "pep", config)
            workers = [Receivers(server, k, users[k::WORKERS]) for k in range(WORKERS)]
            setup = Setup(name, server, hubds, fds, workers)
            try:
                for hubd in set(hubds.values()):
                    hubd.wait_ready()
                    hubd.wait_connected()
                    wait_published(hubd)
                everyone(workers, "connect")
                subscribed = dict.fromkeys(hubds, 0)
                first = 0
                for plan in plans:
                    subscribe(setup, plan, subscribed[plan.kind])
                    subscribed[plan.kind] = max(subscribed[plan.kind], plan.count)
                    time.sleep(1)
                    results.append(measure(args, setup, plan, first))
                    first += int(plan.rate * args.seconds)
                    time.sleep(2)
            finally:
                for worker in workers:
                    worker.stop()
                for hubd in set(hubds.values()):
                    hubd.stop()
                for fd in fds.values():
                    os.close(fd)
    return results


def run(args: argparse.Namespace) -> list[Row]:
    plans = [Plan.parse(text, args.rate) for text in args.steps.split(",")]
    rows: list[Row] = []
    for name in args.servers.split(","):
        results = run_server(name, args, plans)
        rows += [row(args, step, results[0]) for step in results]
    return rows


def row(args: argparse.Namespace, step: Step, baseline: Step) -> Row:
    plan = step.plan
    how = {
        "direct": "direct IoT events",
        "pubsub": f"{step.server} pubsub service",
        "pep": f"{step.server} PEP",
    }[plan.kind]
    if plan.kind == "direct" and step.server != "prosody":
        how += f" ({step.server})"
    text = (
        f"{step.deliveries_per_s:.0f} deliveries/s ({step.each_per_s:.0f}/s the slowest), "
        f"lost {step.lost}, lag p50 {step.lag_p50:.2f} s p99 {step.lag_p99:.2f} s "
        f"last {step.lag_last:.2f} s; hubd {step.hubd_cpu:.3f} CPU s/1000 ev, "
        f"{step.server} {step.server_cpu:.3f} ({step.server_busy:.0%} of a core)"
    )
    target, met = "", None
    at_full_rate = plan.rate == args.rate
    if plan.kind == "pubsub" and plan.count == 100 and at_full_rate:
        target = "zero loss, hubd CPU/event <= 1 direct subscriber"
        met = step.lost == 0 and step.hubd_cpu <= baseline.hubd_cpu
    elif plan.kind == "pubsub" and plan.count >= 1000:
        target = "measured; the server's ceiling"
    first = step is baseline
    return Row(
        f"{how} to {plan.count} subscriber(s), {plan.rate:g}/s offered for {args.seconds:g} s "
        f"(load {load()})",
        text,
        "" if first else f"1 direct subscriber {baseline.hubd_cpu:.3f} CPU s/1000 ev",
        "" if first else f"{step.hubd_cpu / baseline.hubd_cpu:.2f}x hubd CPU",
        target,
        met,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--steps",
        default="direct:1,direct:100,pubsub:100@10,pubsub:100,pubsub:1000,pep:100",
        help="kind:subscribers[@rate] (kind: direct, pubsub, pep), comma-separated; "
        "the first is the CPU baseline",
    )
    parser.add_argument(
        "--servers", default="prosody,ejabberd", help="prosody and/or ejabberd, in turn"
    )
    parser.add_argument("--rate", type=float, default=1000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of lines per step")
    parser.add_argument("--drain", type=float, default=20, help="seconds allowed to catch up")


def main() -> int:
    return run_alone(__doc__, add_arguments, run)


if __name__ == "__main__":
    raise SystemExit(main())
