"""A throwaway Prosody that also accepts external components (XEP-0114) on loopback.

For tests of services that live in components, such as a XEP-0347 Thing
registry: each component gets a subdomain and a secret; Prosody listens for
component connections on a free loopback port (plaintext, as XEP-0114 is:
loopback only, never a network interface).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hubd.testing.prosody import ProsodyServer, _lua_string, find_free_port

__all__ = ["ProsodyWithComponents"]

_NO_COMPONENTS = "component_ports = { }"


class ProsodyWithComponents(ProsodyServer):
    """A :class:`ProsodyServer` with external components ``<name>.<domain>``."""

    def __init__(self, workdir: Path, components: Iterable[str], **options: Any) -> None:
        super().__init__(workdir, **options)
        #: Component JID -> the secret it authenticates with.
        self.components = {f"{name}.{self.domain}": secrets.token_hex(8) for name in components}
        self.component_port = find_free_port(self.host)

    def _write_config(self) -> None:
        super()._write_config()
        q = _lua_string
        text = self.config_file.read_text(encoding="utf-8")
        text = text.replace(
            _NO_COMPONENTS,
            f"component_ports = {{ {self.component_port} }}\n"
            f"component_interfaces = {{ {q(self.host)} }}",
        )
        for jid, secret in self.components.items():
            text += f"\nComponent {q(jid)}\n  component_secret = {q(secret)}\n"
        self.config_file.write_text(text, encoding="utf-8")
