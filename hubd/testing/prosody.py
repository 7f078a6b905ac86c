"""A throwaway Prosody XMPP server living entirely in one directory.

Used by the test suite and by the demo: it makes its own CA and server
certificate with ``openssl``, writes a Prosody config next to them, picks a
free loopback port and runs ``prosody -F`` as a child process.  Nothing is
read from or written to ``/etc``.

Prosody may hang instead of exiting when it is misconfigured, so startup is
always bounded by a deadline; errors carry the tail of Prosody's log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeAlias

from hubd.testing.certificates import CertificateError, make_certificates
from hubd.testing.prosody_uploads import https_lines, upload_component_lines, uploaded_files

__all__ = ["DEFAULT_MODULES", "ProsodyError", "ProsodyServer", "find_free_port"]

log = logging.getLogger(__name__)

#: Modules enabled on every test server (all are shipped with Prosody 0.12).
DEFAULT_MODULES: tuple[str, ...] = (
    "roster",
    "saslauth",
    "tls",
    "disco",
    "ping",
    "presence",
    "smacks",
    "offline",
    "carbons",
    "vcard",
    # Every public server has PEP, and OMEMO (on by default in hubd) publishes its keys there.
    "pep",
)

_LOG_LEVELS = ("debug", "info", "warn", "error")
_POLL_INTERVAL = 0.02
_TAIL_LINES = 60
_BIND_FAILURE = "Failed to open server port"
_SHUTTING_DOWN = "Shutting down"
_START_ATTEMPTS = 3
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


_Finalizer: TypeAlias = "weakref.finalize[[subprocess.Popen[bytes], IO[bytes]], ProsodyServer]"


class ProsodyError(RuntimeError):
    """Prosody (or one of its helper tools) could not be set up, run or stopped."""


class _PortInUseError(ProsodyError):
    """Prosody started but could not bind its client port."""


def find_free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago.

    The kernel picks it (bind to port 0); another process may still take it
    before Prosody binds it, which :meth:`ProsodyServer.start` detects.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _lua_string(value: str) -> str:
    """Quote ``value`` as a Lua string literal."""
    if any(ch in value for ch in "\n\r\0"):
        raise ProsodyError(f"value not allowed in a Prosody config: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _require_binary(name: str) -> str:
    """Return the path of ``name`` on PATH or raise a :class:`ProsodyError`."""
    path = shutil.which(name)
    if path is None:
        if name == "openssl":
            raise ProsodyError("openssl is not installed: apt-get install openssl")
        raise ProsodyError("prosody is not installed: apt-get install prosody")
    return path


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a text file, or a note if it is absent."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path.name} does not exist)"
    except OSError as exc:
        return f"({path.name} unreadable: {exc})"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else f"({path.name} is empty)"


def _kill_quietly(proc: subprocess.Popen[bytes], console: IO[bytes]) -> None:
    """Kill a leftover Prosody child (finalizer of a server never stopped)."""
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    console.close()


class ProsodyServer:
    """A Prosody server run from ``workdir`` for tests and demos.

    ``start()`` creates everything it needs on first use (certificates, config,
    data dir).  The port is chosen once and kept across :meth:`restart`.
    Accounts are added with :meth:`register`, whether the server runs or not.
    """

    def __init__(
        self,
        workdir: Path,
        domain: str = "localhost",
        host: str = "127.0.0.1",
        *,
        modules: Iterable[str] = DEFAULT_MODULES,
        log_level: str = "info",
        port: int | None = None,
        muc: bool = False,
        pubsub: bool = False,
        uploads: bool = False,
        upload_size_limit: int = 10 * 1024 * 1024,
    ) -> None:
        """Describe a server; nothing is created or started yet.

        :param workdir: directory holding config, certificates, data and logs
            (created if missing).
        :param domain: XMPP domain served (the certificate's subjectAltName).
        :param host: loopback address the client port listens on.
        :param modules: Prosody modules to enable (see :data:`DEFAULT_MODULES`).
        :param log_level: lowest level written to :attr:`log_file`.
        :param port: a fixed client port (default: a free one, moved if taken).
        :param muc: also serve group chat (XEP-0045) on ``conference.<domain>``.
        :param pubsub: PEP on every account and a pubsub service on ``pubsub.<domain>``,
            where only ``hub@<domain>`` may create nodes (Prosody 0.12 has no other way).
        :param uploads: HTTP File Upload (XEP-0363, ``mod_http_file_share``) on
            ``upload.<domain>``, HTTPS on a free loopback port with the domain's certificate.
        :param upload_size_limit: the largest file it takes, in bytes (advertised).
        """
        if not _DOMAIN_RE.match(domain):
            raise ProsodyError(f"invalid XMPP domain: {domain!r}")
        if log_level not in _LOG_LEVELS:
            raise ProsodyError(f"log_level must be one of {_LOG_LEVELS}, not {log_level!r}")
        self.workdir = Path(workdir).resolve()
        self.domain = domain
        self.host = host
        self.modules: tuple[str, ...] = tuple(modules)
        if pubsub and "pep" not in self.modules:
            self.modules = (*self.modules, "pep")
        self.log_level = log_level
        self.muc_domain = f"conference.{domain}" if muc else None
        self.pubsub_domain = f"pubsub.{domain}" if pubsub else None
        self.upload_domain = f"upload.{domain}" if uploads else None
        self.upload_size_limit = upload_size_limit
        self._https_port = find_free_port(host) if uploads else None
        self.config_file = self.workdir / "prosody.cfg.lua"
        self.log_file = self.workdir / "prosody.log"
        self.console_file = self.workdir / "prosody.console.log"
        self.pid_file = self.workdir / "prosody.pid"
        self.data_dir = self.workdir / "data"
        self.cert_dir = self.workdir / "certs"
        self.ca_file = self.cert_dir / "ca.pem"
        self.cert_file = self.cert_dir / f"{domain}.crt"
        self.key_file = self.cert_dir / f"{domain}.key"
        #: Seconds the last successful :meth:`start` took (None before one).
        self.last_start_seconds: float | None = None
        self._port = port or find_free_port(host)
        self._port_pinned = port is not None
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None
        self._finalizer: _Finalizer | None = None

    # ------------------------------------------------------------------ info

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ProsodyServer {self.domain} on {self.host}:{self._port} ({state})>"

    @property
    def port(self) -> int:
        """TCP port of the client (c2s, STARTTLS) listener."""
        return self._port

    @property
    def running(self) -> bool:
        """Whether the Prosody process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the running Prosody process, if any."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def https_port(self) -> int | None:
        """The HTTPS port of the upload service (None without ``uploads``)."""
        return self._https_port

    def uploaded_files(self) -> list[Path]:
        """The files the upload service holds (empty without ``uploads``)."""
        return uploaded_files(self.data_dir) if self.upload_domain else []

    def jid(self, user: str) -> str:
        """Return the bare JID of ``user`` on this server."""
        return f"{user}@{self.domain}"

    # ----------------------------------------------------------------- setup

    def prepare(self) -> None:
        """Create workdir, data dir, certificates (once) and the config file."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self.cert_dir.mkdir(mode=0o700, exist_ok=True)
        if not (self.ca_file.is_file() and self.cert_file.is_file() and self.key_file.is_file()):
            self._make_certificates()
        self._write_config()

    def _make_certificates(self) -> None:
        """Make a throwaway EC P-256 CA and a server certificate for the domain."""
        t0 = time.monotonic()
        try:
            make_certificates(
                self.cert_dir, self.domain, self.ca_file, self.cert_file, self.key_file
            )
        except CertificateError as err:
            raise ProsodyError(str(err)) from None
        log.debug("made CA and certificate for %s in %.3fs", self.domain, time.monotonic() - t0)

    def _write_config(self) -> None:
        """Write the Prosody config for the current port."""
        q = _lua_string
        modules = ", ".join(q(m) for m in self.modules)
        lines = [
            "-- Generated by hubd.testing.prosody; rewritten on every start.",
            f"pidfile = {q(str(self.pid_file))}",
            f"data_path = {q(str(self.data_dir))}",
            f"certificates = {q(str(self.cert_dir))}",
            "log = {",
            f'  {{ levels = {{ min = {q(self.log_level)} }}, to = "file", '
            f"filename = {q(str(self.log_file))} }};",
            "}",
        ]
        if os.geteuid() == 0:
            lines.append("run_as_root = true")
        lines += [
            f"c2s_ports = {{ {self._port} }}",
            f"c2s_interfaces = {{ {q(self.host)} }}",
            "c2s_direct_tls_ports = { }",
            "legacy_ssl_ports = { }",
            "s2s_ports = { }",
            "s2s_direct_tls_ports = { }",
            "http_ports = { }",
            f"https_ports = {{ {self._https_port} }}" if self._https_port else "https_ports = { }",
            "component_ports = { }",
            "proxy65_ports = { }",
            "network_settings = { nagle = false }",
            'authentication = "internal_hashed"',
            'storage = "internal"',
            *(https_lines(self.host, self.key_file, self.cert_file) if self._https_port else []),
            "c2s_require_encryption = true",
            "allow_registration = false",
            f"modules_enabled = {{ {modules} }}",
            'modules_disabled = { "s2s" }',
            "",
            f"VirtualHost {q(self.domain)}",
            f"  ssl = {{ key = {q(str(self.key_file))}, certificate = {q(str(self.cert_file))} }}",
            "",
        ]
        if self.muc_domain is not None:
            lines += [f"Component {q(self.muc_domain)} {q('muc')}", ""]
        if self.pubsub_domain is not None:
            admins = q(f"hub@{self.domain}")
            lines += [
                f"Component {q(self.pubsub_domain)} {q('pubsub')}",
                f"  admins = {{ {admins} }}",
                "",
            ]
        if self._https_port is not None:
            lines += upload_component_lines(self.domain, self._https_port, self.upload_size_limit)
        self.config_file.write_text("\n".join(lines), encoding="utf-8")

    # ------------------------------------------------------------- accounts

    def register(self, user: str, password: str) -> None:
        """Create (or reset the password of) ``user`` with ``prosodyctl``.

        Works whether the server runs or not: Prosody's internal storage reads
        accounts from disk on each login.
        """
        prosodyctl = _require_binary("prosodyctl")
        if not self.config_file.is_file():
            self.prepare()
        cmd = [prosodyctl, "--config", str(self.config_file), "register", user, self.domain]
        result = subprocess.run(
            [*cmd, password],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise ProsodyError(
                f"prosodyctl register {user} {self.domain} failed "
                f"(exit {result.returncode}): {output}"
            )
        log.debug("registered %s", self.jid(user))

    # ------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15.0) -> None:
        """Start Prosody and return once its client port accepts connections.

        Does nothing if it already runs.  Raises :class:`ProsodyError`, with the
        tail of Prosody's log, if it exits or is not listening within ``timeout``.
        """
        if self.running:
            return
        prosody = _require_binary("prosody")
        self.prepare()
        t0 = time.monotonic()
        deadline = t0 + timeout
        attempts = 1 if self._port_pinned else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._launch(prosody, deadline)
                break
            except _PortInUseError:
                if attempt == attempts:
                    raise
                old = self._port
                self._port = find_free_port(self.host)
                log.warning("port %d was taken, retrying prosody on port %d", old, self._port)
                self._write_config()
        self._port_pinned = True
        self.last_start_seconds = time.monotonic() - t0
        log.info(
            "prosody for %s listening on %s:%d (pid %s) after %.3fs",
            self.domain,
            self.host,
            self._port,
            self.pid,
            self.last_start_seconds,
        )

    def _launch(self, prosody: str, deadline: float) -> None:
        """Spawn Prosody once and wait for its port, killing it on failure."""
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        console = self.console_file.open("ab")
        self._console = console
        proc = subprocess.Popen(
            [prosody, "--config", str(self.config_file), "-F"],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for us must not reach it first
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _kill_quietly, proc, console)
        ready = re.compile(rf"Activated service 'c2s' on .*:{self._port}\b")
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    raise ProsodyError(
                        f"prosody exited with code {code} during startup\n{self._diagnostics()}"
                    )
                new_log = self._read_log(log_offset)
                if _BIND_FAILURE in new_log:
                    raise _PortInUseError(
                        f"prosody could not listen on {self.host}:{self._port}\n"
                        f"{self._diagnostics()}"
                    )
                if _SHUTTING_DOWN in new_log:
                    # e.g. "Refusing to run as root": prosody then hangs instead of exiting
                    raise ProsodyError(f"prosody shut down during startup\n{self._diagnostics()}")
                if ready.search(new_log) and self._port_open():
                    return
                if time.monotonic() >= deadline:
                    raise ProsodyError(
                        f"prosody did not listen on {self.host}:{self._port} in time "
                        f"(it may hang when misconfigured)\n{self._diagnostics()}"
                    )
                time.sleep(_POLL_INTERVAL)
        except BaseException:
            self._terminate(grace=2.0)
            raise

    def _read_log(self, offset: int) -> str:
        """Return what Prosody logged after byte ``offset``."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _port_open(self) -> bool:
        """Whether a TCP connection to the client port succeeds right now."""
        try:
            with socket.create_connection((self.host, self._port), timeout=1.0):
                return True
        except OSError:
            return False

    def _diagnostics(self) -> str:
        """Tails of Prosody's log and console output, for error messages."""
        return (
            f"--- {self.log_file} (tail) ---\n{_tail(self.log_file)}\n"
            f"--- {self.console_file} (tail) ---\n{_tail(self.console_file, 10)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Prosody with SIGTERM, then SIGKILL after ``timeout`` seconds.

        Does nothing if it is not running.
        """
        if self._proc is None:
            return
        pid = self._proc.pid
        self._terminate(grace=timeout)
        log.info("prosody for %s (pid %d) stopped", self.domain, pid)

    def _terminate(self, grace: float) -> None:
        """Terminate the child (SIGTERM, then SIGKILL) and release its resources."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "prosody (pid %d) ignored SIGTERM for %.1fs; killing", proc.pid, grace
                    )
                    proc.kill()
                    proc.wait(timeout=10)
            self._proc = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._console is not None:
            self._console.close()
            self._console = None

    def restart(self, timeout: float = 15.0) -> None:
        """Stop and start again on the same port (accounts and data are kept)."""
        self.stop()
        self.start(timeout=timeout)

    # ------------------------------------------------------ context manager

    def __enter__(self) -> Self:
        """Start the server (if needed) and return it."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()
