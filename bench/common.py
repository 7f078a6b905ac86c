"""Shared parts of the benchmarks: a throwaway server, hubd configs, process probes.

Every benchmark returns rows for one table (:class:`Row`), printed alone by
its own script or together by ``bench/run_all.py``.  Processes are measured
from ``/proc/<pid>``: resident memory (``VmRSS``), CPU time (``utime`` +
``stime`` in ``stat``) and wake-ups (``voluntary_ctxt_switches``: every time
the process slept and was woken).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hubd.testing.prosody import ProsodyServer

BENCH = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    """One line of the results table."""

    metric: str
    hubd: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


def load() -> str:
    """The 1-minute load average, noted next to each figure (2 cores, shared machine)."""
    return f"{os.getloadavg()[0]:.2f}"


def print_table(rows: Sequence[Row], out: object = None) -> None:
    """Print rows as an aligned text table."""
    head = ("metric", "hubd", "baseline", "ratio", "target", "")
    cells = [head, *((r.metric, r.hubd, r.baseline, r.ratio, r.target, r.verdict) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    for index, cell in enumerate(cells):
        print("  ".join(text.ljust(width) for text, width in zip(cell, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    sys.stdout.flush()


def run_alone(
    doc: str | None,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], Sequence[Row]],
) -> int:
    """``main()`` of a benchmark run alone: its options, its rows as a table (run_all.py
    calls ``add_arguments`` and ``run`` itself)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    print_table(run(parser.parse_args()))
    return 0


def markdown_table(rows: Sequence[Row]) -> str:
    """The same rows as a Markdown table (RESULTS.md)."""
    lines = ["| metric | hubd | baseline | ratio | target | |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.metric} | {r.hubd} | {r.baseline} | {r.ratio} | {r.target} | {r.verdict} |"
        for r in rows
    ]
    return "\n".join(lines)


# --- server and hubd -------------------------------------------------------------


def make_server(work: Path, users: Iterable[str]) -> ProsodyServer:
    """A Prosody in ``work/prosody`` with ``hub`` (hubpass) and each user (pass)."""
    server = ProsodyServer(work / "prosody")
    server.register("hub", "hubpass")
    for user in users:
        server.register(user, "pass")
    return server


def hub_config(
    work: Path, server: ProsodyServer, devices: str, extra: str = "", log_level: str = "warning"
) -> Path:
    """Write a hubd config in ``work`` (state in ``work/state``) and return its path."""
    (work / "pw").write_text("hubpass\n")
    config = work / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            xmpp: {{jid: {server.jid("hub")}, password_file: pw, server: {server.host},
                   port: {server.port}, ca_file: {server.ca_file}}}
            access: {{readers: ["*@{server.domain}"]}}
            limits: {{requests_per_minute: 60000, burst: 10000, max_subscriptions: 10000}}
            state_dir: state
            log_level: {log_level}
            """
        )
        + extra
        + "devices:\n"
        + devices
    )
    return config


def onewire_devices(work: Path, count: int, poll: float = 30.0) -> str:
    """``count`` DS18B20 thermometers on a fake sysfs tree (the kernel's w1 files)."""
    base = work / "w1"
    lines = []
    for index in range(count):
        sensor = f"28-{index:012x}"
        folder = base / sensor
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "temperature").write_text(f"{20000 + index}\n")
        lines.append(
            f"  - {{id: t{index}, driver: gpio.onewire, sensor_id: {sensor}, "
            f"base_path: {base}, poll_interval: {poll}}}\n"
        )
    return "".join(lines)


class Hubd:
    """``hubd run`` as a child process, with a notify socket to see READY=1."""

    def __init__(self, work: Path, config: Path, loop: str = "asyncio") -> None:
        self.work = work
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        path = work / "notify"
        path.unlink(missing_ok=True)
        self.notify.bind(str(path))
        # "asyncio": as installed on a Pi (uvloop is an optional extra); "uvloop" if installed.
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "HUBD_LOOP": loop}
        self.log = (work / "hubd.log").open("wb")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hubd", "run", "-c", str(config)],
            cwd=work,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        self.pid = self.proc.pid
        self.seen: list[tuple[str, float]] = []

    def _wait_notify(self, wanted: str, timeout: float) -> float:
        # A datagram may carry several lines (READY=1 with STATUS=connected...).
        for line, when in self.seen:
            if line.startswith(wanted):
                return when
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"hubd: no {wanted!r}; its log: {self.work / 'hubd.log'}")
            self.notify.settimeout(min(left, 0.5))
            try:
                data = self.notify.recv(4096).decode()
            except TimeoutError:
                continue
            when = time.perf_counter() - self.started
            self.seen.extend((line, when) for line in data.split("\n"))
            if any(line.startswith(wanted) for line in data.split("\n")):
                return when

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from spawn to READY=1."""
        return self._wait_notify("READY=1", timeout)

    def wait_connected(self, timeout: float = 30) -> float:
        """Until the status line says ``connected`` (after READY); seconds since spawn."""
        return self._wait_notify("STATUS=connected", timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        self.notify.close()
        keep = os.environ.get("BENCH_KEEP_LOGS")
        if keep:
            target = Path(keep) / f"hubd-{self.pid}.log"
            target.write_bytes((self.work / "hubd.log").read_bytes())


def wait_log(path: Path, needle: str, timeout: float = 30, level_ok: bool = False) -> None:
    """Poll a log file until ``needle`` appears (bounded)."""
    deadline = time.monotonic() + timeout
    while needle not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {needle!r} in {path}")
        time.sleep(0.05)


# --- /proc probes -------------------------------------------------------------


def status(pid: int) -> dict[str, int]:
    """Numbers of ``/proc/<pid>/status`` (kB for memory)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[key] = int(fields[0])
    return values


def rss_mib(pid: int) -> float:
    return status(pid)["VmRSS"] / 1024


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += status_file_value(task / "status", "voluntary_ctxt_switches")
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return total


def status_file_value(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class BareClient:
    """bench/bare_client.py as a child process: slixmpp connected, nothing else."""

    def __init__(self, server: ProsodyServer, user: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "bare_client.py"),
                f"{server.jid(user)}/bare",
                "pass",
                server.host,
                str(server.port),
                str(server.ca_file),
                *extra,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.pid = self.proc.pid

    def readline(self, timeout: float = 30) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(0.5):
                    return self.proc.stdout.readline().strip()
                if self.proc.poll() is not None:
                    break
        raise RuntimeError("bare client: no answer")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- a lightweight XMPP receiver ------------------------------------------------

_VALUE = re.compile(
    rb"""name=["']v["'][^>]*?value=["'](\d+)["']|value=["'](\d+)["'][^>]*?name=["']v["']"""
)
_BODY = re.compile(rb"<body>(\d+)</body>")


class RawClient:
    """A minimal XMPP client (STARTTLS, SASL PLAIN, bind) that only counts what arrives.

    The subscribers of the throughput benchmark must not be its bottleneck:
    slixmpp parses every stanza into objects (about 10k stanzas/s on one
    core), while this reads the decrypted bytes and finds the event values
    with one regular expression.  ``values`` holds the distinct ``v`` values
    received (events, several per message when hubd batches them), ``bodies``
    the distinct numeric message bodies (the bare slixmpp sender's messages).
    """

    def __init__(self, server: ProsodyServer, user: str, password: str = "pass") -> None:
        self.server = server
        self.user = user
        self.password = password
        self.jid = f"{server.jid(user)}/raw"
        self.values: set[int] = set()
        self.bodies: set[int] = set()
        self.changed = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = b""
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[bool]] = {}
        #: Called with each ``v`` value when it first arrives (bench/fanout.py's lag).
        self.on_value: Callable[[int], None] | None = None

    async def _until(self, pattern: bytes, timeout: float = 10) -> bytes:
        assert self._reader is not None
        async with asyncio.timeout(timeout):
            while pattern not in self._buffer:
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionError(f"{self.user}: closed while waiting for {pattern!r}")
                self._buffer += data
        head, _, self._buffer = self._buffer.partition(pattern)
        return head + pattern

    def _send(self, text: str) -> None:
        assert self._writer is not None
        self._writer.write(text.encode())

    def _open_stream(self) -> None:
        self._send(
            f"<?xml version='1.0'?><stream:stream to='{self.server.domain}' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
        )

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(
            self.server.host, self.server.port
        )
        self._open_stream()
        await self._until(b"</stream:features>")
        self._send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        await self._until(b"<proceed")
        self._buffer = b""
        context = ssl.create_default_context(cafile=str(self.server.ca_file))
        await self._writer.start_tls(context, server_hostname=self.server.domain)
        self._open_stream()
        await self._until(b"</stream:features>")
        token = base64.b64encode(f"\0{self.user}\0{self.password}".encode()).decode()
        self._send(
            f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        )
        await self._until(b"<success")
        self._buffer = b""
        self._open_stream()
        await self._until(b"</stream:features>")
        self._send(
            "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>raw</resource></bind></iq>"
        )
        await self._until(b"</iq>")
        self._send("<presence><priority>-1</priority></presence>")
        self.start_counting()

    async def iq(
        self, to: str, payload: str, ident: str, timeout: float = 10, kind: str = "get"
    ) -> None:
        """Send an IQ (a get, or ``kind``) and wait for its answer (an error raises)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self._send(f"<iq type='{kind}' to='{to}' id='{ident}'>{payload}</iq>")
        if not await asyncio.wait_for(future, timeout):
            raise RuntimeError(f"{self.user}: IQ {ident} answered with an error")

    def start_counting(self) -> None:
        """Read everything from now on (call once, after :meth:`connect`)."""
        self._task = asyncio.create_task(self._count())

    async def _count(self) -> None:
        assert self._reader is not None
        tail = self._buffer
        while True:
            data = await self._reader.read(262144)
            if not data:
                return
            chunk = tail + data
            # Keep the unfinished end for the next read; a match never spans a '>'.
            cut = chunk.rfind(b">") + 1
            chunk, tail = chunk[:cut], chunk[cut:]
            for match in _VALUE.finditer(chunk):
                value = int(match.group(1) or match.group(2))
                if self.on_value is not None and value not in self.values:
                    self.on_value(value)
                self.values.add(value)
            for match in _BODY.finditer(chunk):
                self.bodies.add(int(match.group(1)))
            for ident, future in list(self._pending.items()):
                for quote in (b"'", b'"'):
                    at = chunk.find(b"id=" + quote + ident.encode() + quote)
                    if at >= 0 and not future.done():
                        end = chunk.find(b">", at)
                        future.set_result(b"error" not in chunk[chunk.rfind(b"<iq", 0, at) : end])
                        del self._pending[ident]
                        break
            self.changed.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._writer is not None:
            self._writer.close()


def pty_pair(link: Path) -> int:
    """A pseudo-terminal; ``link`` points at its device end; return the master fd."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(slave))
    return master
