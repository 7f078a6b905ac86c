"""What the hub knows of its registration with a Thing registry (XEP-0347), kept in state_dir.

One small JSON file, ``state_dir/registry.json``, mode 0600 because it holds
``KEY``, the secret whose holder can claim the hub.  It is created once (the
key with it) by whichever comes first, ``hubd claim`` or the daemon, and
replaced atomically on every change: the owner a registry named (``claimed``),
whether the claim is public, the meta tags last sent, and whether the owner
removed the hub from the registry or it unregistered itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

FILE_NAME = "registry.json"
KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class Ownership:
    """The hub's standing with its registry."""

    key: str
    owner: str | None = None
    public: bool = True
    removed: bool = False
    unregistered: bool = False
    #: The tags (name -> value) the registry has: compared with the config for ``update``.
    sent: dict[str, str | float] = field(default_factory=dict)

    @property
    def claimed(self) -> bool:
        """True once a registry said who owns the hub."""
        return self.owner is not None

    def changed(self, **changes: Any) -> Ownership:
        """A copy with ``changes`` applied."""
        return replace(self, **changes)


def ownership_path(state_dir: Path) -> Path:
    """Where the file lives."""
    return state_dir / FILE_NAME


def read_ownership(state_dir: Path) -> Ownership | None:
    """The saved standing, or None when there is none (or it is unreadable: said once)."""
    path = ownership_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        _LOGGER.warning("ignoring unreadable %s: %s", path, err)
        return None
    return _from_json(data)


def load_ownership(state_dir: Path) -> Ownership:
    """The saved standing; a new one with a fresh random key, saved, when there is none."""
    existing = read_ownership(state_dir)
    if existing is not None:
        return existing
    created = Ownership(key=new_key())
    save_ownership(state_dir, created)
    _LOGGER.info("created the registry key in %s", ownership_path(state_dir))
    return created


def new_key() -> str:
    """A fresh random ``KEY``: long enough that nobody guesses it (XEP-0347 §3.8)."""
    return secrets.token_hex(KEY_BYTES)


def save_ownership(state_dir: Path, ownership: Ownership) -> None:
    """Write the file whole: a 0600 temporary file, fsync, rename."""
    path = ownership_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an older temporary file may have other bits
        json.dump(asdict(ownership), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _from_json(data: Any) -> Ownership | None:
    if not isinstance(data, dict) or not isinstance(data.get("key"), str) or not data["key"]:
        _LOGGER.warning("ignoring %s: no key in it", FILE_NAME)
        return None
    owner = data.get("owner")
    sent = data.get("sent")
    return Ownership(
        key=data["key"],
        owner=owner if isinstance(owner, str) and owner else None,
        public=data.get("public") is not False,
        removed=data.get("removed") is True,
        unregistered=data.get("unregistered") is True,
        sent=dict(sent) if isinstance(sent, dict) else {},
    )
