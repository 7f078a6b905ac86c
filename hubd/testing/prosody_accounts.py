"""Many accounts on a test Prosody at once, written straight into its data directory.

``prosodyctl register`` starts a Lua interpreter per account (about 0.2 s
each here), too slow for the 1,000 subscribers of ``bench/fanout.py``.
Prosody's ``internal_hashed`` authentication keeps one file per account,
``DATA/<domain>/accounts/<user>.dat``, holding the SCRAM-SHA-1 keys (RFC
5802) of the password, and reads it on each login: writing those files is
what ``prosodyctl`` does, without the interpreter.  Works whether the server
runs or not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from pathlib import Path

# RFC 7677's minimum.  Prosody verifies a PLAIN login by deriving the key again with the
# account's own count, so a lower count than prosodyctl's 10,000 logs 1,000 clients in faster.
ITERATIONS = 4096


def _encoded(name: str) -> str:
    """Prosody's datamanager file-name encoding: every non-alphanumeric byte as %xx."""
    return re.sub(r"[^A-Za-z0-9]", lambda m: "".join(f"%{b:02x}" for b in m[0].encode()), name)


def scram_keys(password: str, salt: str, iterations: int = ITERATIONS) -> tuple[str, str]:
    """(stored_key, server_key) in hex, as Prosody's ``internal_hashed`` stores them."""
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).hexdigest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).hexdigest()
    return stored_key, server_key


def write_accounts(data_dir: Path, domain: str, accounts: Mapping[str, str]) -> None:
    """Create (or reset) each ``user: password`` of ``accounts`` on ``domain``."""
    folder = data_dir / _encoded(domain) / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    for user, password in accounts.items():
        if not user or user != user.lower() or any(c in user for c in "@/ \"'"):
            raise ValueError(f"not a plain lower-case user name: {user!r}")
        salt = secrets.token_hex(16)
        stored_key, server_key = scram_keys(password, salt)
        (folder / f"{_encoded(user)}.dat").write_text(
            "return {\n"
            f'\t["iteration_count"] = {ITERATIONS};\n'
            f'\t["stored_key"] = "{stored_key}";\n'
            f'\t["server_key"] = "{server_key}";\n'
            f'\t["salt"] = "{salt}";\n'
            "};\n",
            encoding="utf-8",
        )
