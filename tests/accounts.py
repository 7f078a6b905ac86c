"""The accounts on every test server: user -> password.  Roles are hubd's."""

from __future__ import annotations

ACCOUNTS: dict[str, str] = {
    "hub": "hubpass",  # the hub itself
    "alice": "alicepass",  # owner
    "bob": "bobpass",  # reader
    "carol": "carolpass",  # controller
    "mallory": "mallorypass",  # stranger
    "registry": "registrypass",  # a XEP-0347 Thing registry (tests/thing_registry.py)
    "garage-hub": "garagepass",  # a second hub, a data source of the first (remotes:)
    "shed-hub": "shedpass",  # a fake remote hub that never answers readouts (remotes:)
}
