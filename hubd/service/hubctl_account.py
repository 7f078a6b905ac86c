"""Whose account hubctl uses: flags, then the environment, then ``~/.config/hubctl/config.yaml``.

Each setting is taken from the first place that has it.  The password never
comes from the command line (it would show in ``ps`` and in shell history):
``--password-file``, ``HUBCTL_PASSWORD``, the file's ``password_file``, or,
on a terminal, a prompt.  The file holds the same keys as the environment in
lower case::

    jid: me@example.org
    password_file: ~/.config/hubctl/password     # relative paths: from this file's folder
    server: xmpp.example.org                     # optional: the JID's domain otherwise
    port: 5222                                   # optional
    ca_file: /etc/ssl/my-ca.pem                  # optional: a CA to trust besides the system's

PyYAML is imported only when the file exists: most scripts pass the
environment, and every hubctl run starts a fresh interpreter.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubd.errors import UsageError
from hubd.xmpp.hubctl_client import Account

KEYS = ("jid", "password_file", "server", "port", "ca_file")
ENVIRONMENT = {
    "jid": "HUBCTL_JID",
    "server": "HUBCTL_SERVER",
    "port": "HUBCTL_PORT",
    "ca_file": "HUBCTL_CA_FILE",
}
PASSWORD_VARIABLE = "HUBCTL_PASSWORD"


def config_path(home: Path | None = None) -> Path:
    """``~/.config/hubctl/config.yaml``."""
    return (home or Path.home()) / ".config" / "hubctl" / "config.yaml"


@dataclass(frozen=True, slots=True)
class AccountFlags:
    """The account settings given on the command line (None: not given)."""

    jid: str | None = None
    password_file: Path | None = None
    server: str | None = None
    port: int | None = None
    ca_file: Path | None = None


def resolve_account(
    flags: AccountFlags,
    environ: Mapping[str, str] | None = None,
    *,
    config_file: Path | None = None,
    prompt: Callable[[str], str] | None = None,
) -> Account:
    """The account from ``flags``, ``environ`` and the config file, or UsageError.

    ``prompt`` asks for a password when none is configured (None: do not ask).
    """
    env = os.environ if environ is None else environ
    path = config_file or config_path()
    stored = load_config_file(path)

    def pick(key: str) -> Any:
        given = getattr(flags, key)
        if given is not None:
            return given
        variable = ENVIRONMENT.get(key)
        if variable is not None and env.get(variable):
            return env[variable]
        return stored.get(key)

    jid = pick("jid")
    if not jid:
        raise UsageError(f"no account: give --jid, set HUBCTL_JID, or write jid: in {_shown(path)}")
    return Account(
        jid=str(jid),
        password=_password(flags, env, stored, path, prompt, str(jid)),
        server=str(pick("server")) if pick("server") else None,
        port=_port(pick("port")),
        ca_file=_path(pick("ca_file"), "ca_file"),
    )


def load_config_file(path: Path) -> dict[str, Any]:
    """The settings in ``path`` (relative paths resolved from its folder); {} if it is absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise UsageError(f"{_shown(path)}: {err.strerror or err}") from None
    import yaml  # only when there is a file (see the module docstring)

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise UsageError(f"{_shown(path)}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{_shown(path)}: expected keys ({', '.join(KEYS)}), not a list or text")
    if "password" in data:
        raise UsageError(f"{_shown(path)}: a password does not go in this file: use password_file")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise UsageError(
            f"{_shown(path)}: unknown key {', '.join(unknown)} (known: {', '.join(KEYS)})"
        )
    settings: dict[str, Any] = {k: v for k, v in data.items() if v is not None}
    for key in ("password_file", "ca_file"):
        if key in settings:
            settings[key] = path.parent / Path(str(settings[key])).expanduser()
    return settings


def _password(
    flags: AccountFlags,
    env: Mapping[str, str],
    stored: Mapping[str, Any],
    path: Path,
    prompt: Callable[[str], str] | None,
    jid: str,
) -> str:
    if flags.password_file is not None:
        return read_password_file(flags.password_file.expanduser())
    if env.get(PASSWORD_VARIABLE):
        return env[PASSWORD_VARIABLE]
    if "password_file" in stored:
        return read_password_file(Path(stored["password_file"]))
    if prompt is not None:
        try:
            password = prompt(f"Password for {jid}: ")
        except (EOFError, KeyboardInterrupt):
            password = ""
        if password:
            return password
    raise UsageError(
        f"no password for {jid}: give --password-file, set {PASSWORD_VARIABLE}, "
        f"or write password_file: in {_shown(path)}"
    )


def read_password_file(path: Path) -> str:
    """The first line of ``path``, or UsageError saying why it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UsageError(f"password file {path}: {reason}") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise UsageError(f"password file {path} is empty")
    return password


def terminal_prompt() -> Callable[[str], str] | None:
    """``getpass`` when a person sits at the terminal; None in scripts and cron."""
    try:
        return getpass.getpass if os.isatty(0) else None
    except OSError:
        return None


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        port = int(str(value))
    except ValueError:
        raise UsageError(f"port: not a number: {value!r}") from None
    if not 0 < port < 65536:
        raise UsageError(f"port: {port} is not between 1 and 65535")
    return port


def _path(value: Any, key: str) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise UsageError(f"{key}: no such file: {path}")
    return path


def _shown(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text
