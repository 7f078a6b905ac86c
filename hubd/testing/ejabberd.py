"""A throwaway ejabberd (Debian's 23.01) living entirely in one directory, like the Prosody one.

A second, independent server implementation for interoperability tests:
``mod_pubsub`` with the ``flat`` and ``pep`` plugins (PEP needs ``mod_caps``)
on ``pubsub.<domain>``.  ejabberd runs as a plain ``erl -s ejabberd`` child
without Erlang distribution (no epmd, no ejabberdctl): accounts are
registered by an ``-eval`` once ejabberd has started, so :meth:`register`
only records them before :meth:`start`.  Startup is bounded by a deadline;
errors carry the tail of ejabberd's log.

The object offers what the tests use of :class:`~hubd.testing.prosody.ProsodyServer`:
``domain``, ``host``, ``port``, ``ca_file``, ``jid()``, ``pubsub_domain``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from hubd.testing.certificates import issue_certificate, make_certificates
from hubd.testing.prosody import find_free_port

__all__ = ["EjabberdError", "EjabberdServer"]

log = logging.getLogger(__name__)

ERL_LIBS = "/usr/lib/x86_64-linux-gnu"
_READY = "hubd-test-accounts-registered"
_POLL_INTERVAL = 0.05


class EjabberdError(RuntimeError):
    """ejabberd could not be set up, started or stopped."""


def _erl_binary(value: str) -> str:
    """``value`` as an Erlang binary literal (``<<"...">>``)."""
    if any(ch in value for ch in '"\\\n\r\0'):
        raise EjabberdError(f"value not allowed in an Erlang literal: {value!r}")
    return f'<<"{value}">>'


class EjabberdServer:
    """An ejabberd server run from ``workdir`` for tests."""

    def __init__(
        self,
        workdir: Path,
        domain: str = "localhost",
        host: str = "127.0.0.1",
        *,
        shared_ca: tuple[Path, Path] | None = None,
    ) -> None:
        """Describe a server; nothing is created or started yet.

        :param shared_ca: (CA certificate, CA key) of a test CA shared with other
            servers: this one's certificate comes from it, and s2s (federation)
            opens on :attr:`s2s_port`, to the peers set in :attr:`routes`.
        """
        self.workdir = Path(workdir).resolve()
        self.domain = domain
        self.host = host
        self.pubsub_domain: str | None = f"pubsub.{domain}"
        self.config_file = self.workdir / "ejabberd.yml"
        self.log_dir = self.workdir / "logs"
        self.console_file = self.workdir / "ejabberd.console.log"
        self.spool_dir = self.workdir / "spool"
        self.cert_dir = self.workdir / "certs"
        self.ca_file = self.cert_dir / "ca.pem"
        self._port = find_free_port(host)
        self.shared_ca = shared_ca
        #: The port other servers connect to for this domain (with ``shared_ca``).
        self.s2s_port = find_free_port(host) if shared_ca else None
        #: Peer domain -> its s2s port on 127.0.0.1 (found as a DNS SRV record).
        self.routes: dict[str, int] = {}
        self._accounts: dict[str, str] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<EjabberdServer {self.domain} on {self.host}:{self._port}>"

    @property
    def port(self) -> int:
        """TCP port of the client (c2s, STARTTLS) listener."""
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the running ejabberd (the Erlang VM, all its schedulers), if any."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the ejabberd process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def jid(self, user: str) -> str:
        """Return the bare JID of ``user`` on this server."""
        return f"{user}@{self.domain}"

    def register(self, user: str, password: str) -> None:
        """Create ``user`` when the server starts (existing accounts are kept)."""
        if self.running:
            raise EjabberdError("register accounts before start(): no ejabberdctl here")
        self._accounts[user] = password

    def prepare(self) -> None:
        """Create the directories, certificates (once) and the config file."""
        for folder in (self.workdir, self.log_dir, self.spool_dir, self.cert_dir):
            folder.mkdir(parents=True, exist_ok=True)
        bundle = self.cert_dir / "server.pem"
        if not bundle.is_file():
            cert, key = self.cert_dir / "server.crt", self.cert_dir / "server.key"
            if self.shared_ca is None:
                make_certificates(self.cert_dir, self.domain, self.ca_file, cert, key)
            else:
                ca_file, ca_key = self.shared_ca
                issue_certificate(self.cert_dir, ca_file, ca_key, self.domain, cert, key)
                shutil.copyfile(ca_file, self.ca_file)
            bundle.write_bytes(cert.read_bytes() + key.read_bytes())
            bundle.chmod(0o600)
        self.config_file.write_text(
            f"""# Generated by hubd.testing.ejabberd; rewritten on every start.
hosts: ["{self.domain}"]
loglevel: info
certfiles: ["{bundle}"]
listen:
  - port: {self._port}
    ip: "{self.host}"
    module: ejabberd_c2s
    starttls_required: true
{self._s2s_config()}auth_method: internal
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
shaper_rules: {{}}
modules:
  mod_roster: {{}}
  mod_disco: {{}}
  mod_caps: {{}}
  mod_ping: {{}}
  mod_stream_mgmt: {{}}
  mod_offline: {{}}
  mod_pubsub:
    host: "{self.pubsub_domain}"
    access_createnode: local
    plugins: [flat, pep]
""",
            encoding="utf-8",
        )

    def _s2s_config(self) -> str:
        """The s2s part of the config: none at all, or STARTTLS and certificates required."""
        if self.s2s_port is None:
            return "s2s_access: none\n"
        return (
            f"  - port: {self.s2s_port}\n"
            f'    ip: "{self.host}"\n'
            "    module: ejabberd_s2s_in\n"
            "s2s_use_starttls: required\n"
            f'ca_file: "{self.ca_file}"\n'
            "s2s_dns_timeout: 2\n"
        )

    def _dns_setup(self) -> str:
        """Erlang code giving each route an SRV record in the VM's own resolver cache."""
        return "".join(
            f'inet_db:add_rr("_xmpp-server._tcp.{domain}", in, srv, 86400, '
            f'{{0, 0, {port}, "{self.host}"}}), '
            for domain, port in sorted(self.routes.items())
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start ejabberd; return once the accounts exist and the client port accepts."""
        if self.running:
            return
        erl = shutil.which("erl")
        if erl is None or not any(Path(ERL_LIBS).glob("ejabberd-*")):
            raise EjabberdError("ejabberd is not installed: apt-get install ejabberd")
        self.prepare()
        registrations = ", ".join(
            f"ejabberd_auth:try_register({_erl_binary(user)}, {_erl_binary(self.domain)}, "
            f"{_erl_binary(password)})"
            for user, password in self._accounts.items()
        )
        evaluate = f'{self._dns_setup()}[{registrations}], io:format("~s~n", ["{_READY}"]).'
        env = {
            **os.environ,
            "ERL_LIBS": ERL_LIBS,
            "EJABBERD_CONFIG_PATH": str(self.config_file),
            "EJABBERD_LOG_PATH": str(self.log_dir / "ejabberd.log"),
            "HOME": str(self.workdir),
        }
        if self.s2s_port is not None:
            # No name server: the VM resolves only what _dns_setup put in its cache.
            inetrc = self.workdir / "inetrc"
            inetrc.write_text('{lookup, [file, dns]}.\n{resolv_conf, ""}.\n{hosts_file, ""}.\n')
            env["ERL_INETRC"] = str(inetrc)
        offset = self.console_file.stat().st_size if self.console_file.exists() else 0
        self._console = self.console_file.open("ab")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            [
                erl,
                "-noinput",
                "-mnesia",
                "dir",
                f'"{self.spool_dir}"',
                "-s",
                "ejabberd",
                "-eval",
                evaluate,
            ],
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = t0 + timeout
        try:
            while not (_READY in self._console_text(offset) and self._port_open()):
                if self._proc.poll() is not None:
                    raise EjabberdError(f"ejabberd exited ({self._proc.returncode})\n{self.tail()}")
                if time.monotonic() > deadline:
                    raise EjabberdError(f"ejabberd not ready in {timeout:g} s\n{self.tail()}")
                time.sleep(_POLL_INTERVAL)
        except BaseException:
            self.stop()
            raise
        log.info("ejabberd on %s:%d after %.2fs", self.host, self._port, time.monotonic() - t0)

    def _console_text(self, offset: int) -> str:
        with self.console_file.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")

    def _port_open(self) -> bool:
        try:
            with socket.create_connection((self.host, self._port), timeout=1.0):
                return True
        except OSError:
            return False

    def tail(self) -> str:
        parts = []
        for path in (self.console_file, self.log_dir / "ejabberd.log", self.log_dir / "error.log"):
            with contextlib.suppress(OSError):
                lines = path.read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {path} ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (ejabberd stops cleanly on it), SIGKILL after ``timeout``."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            self._proc = None
        if self._console is not None:
            self._console.close()
            self._console = None

    def __enter__(self) -> Self:
        """Start the server and return it."""
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
