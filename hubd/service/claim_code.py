"""``hubd claim``: the XEP-0347 claim code for the owner's phone, and ``hubd check``'s owner line.

Prints the ``IoTDisco;...`` string, the ``iotdisco:`` URI and, when the
``qr`` extra (segno) is installed, the same string as a QR code drawn with
block characters.  segno is imported here only, when the command runs: no
other command pays for it.
"""

from __future__ import annotations

import sys
from typing import TextIO

from hubd.core.claim import claim_string, iotdisco_uri, meta_tags
from hubd.core.config import Config
from hubd.core.ownership import load_ownership, ownership_path, read_ownership


def print_claim(config: Config, out: TextIO) -> int:
    """Print the claim code of the configured hub; 1 when there is nothing to claim."""
    discovery = config.discovery
    if discovery is None:
        print(
            f"{config.path}: no discovery: section, so no Thing registry to claim the hub through",
            file=sys.stderr,
        )
        return 1
    try:
        ownership = load_ownership(config.state_dir)
    except OSError as err:
        path = ownership_path(config.state_dir)
        print(f"cannot read or create {path}: {err.strerror}", file=sys.stderr)
        return 1
    if ownership.owner is not None:
        print(f"already claimed by {ownership.owner}", file=out)
    tags = meta_tags(discovery.meta, ownership.key)
    code = claim_string(tags)
    registry = None if discovery.registry == "auto" else discovery.registry
    print(code, file=out)
    print(iotdisco_uri(tags, registry), file=out)
    try:
        import segno
    except ImportError:
        print("(install hubd[qr] to see it as a QR code here)", file=out)
        return 0
    print(file=out)
    segno.make(code, error="m").terminal(out=out, compact=True)
    print("Keep this code private: whoever has it can claim the hub.", file=out)
    return 0


def owner_line(config: Config) -> str | None:
    """What ``hubd check`` says about the registry and the owner it named (None: no registry)."""
    if config.discovery is None:
        return None
    ownership = read_ownership(config.state_dir)
    if ownership is None or ownership.owner is None:
        waiting = "" if config.access.owners else "; until then it answers nobody"
        return f"thing registry {config.discovery.registry}: not claimed yet{waiting}"
    how = "public" if ownership.public else "private"
    return f"thing registry {config.discovery.registry}: claimed by {ownership.owner} ({how})"
