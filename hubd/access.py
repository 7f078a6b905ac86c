"""Who may do what: one function that every interface asks.

Roles come from the ``access:`` lists (bare JIDs or ``*@domain``); the
strongest matching role wins, and everyone else is a stranger.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class Role(IntEnum):
    """What a requester may do; each role includes the ones below it."""

    STRANGER = 0
    READER = 1  # read, subscribe
    CONTROLLER = 2  # + control
    OWNER = 3  # + administer


class AccessPolicy:
    """Maps a requester's JID to its role."""

    def __init__(
        self,
        owners: Iterable[str] = (),
        controllers: Iterable[str] = (),
        readers: Iterable[str] = (),
    ) -> None:
        self._jids: dict[str, Role] = {}
        self._domains: dict[str, Role] = {}
        self.update(owners, controllers, readers)

    def update(
        self,
        owners: Iterable[str] = (),
        controllers: Iterable[str] = (),
        readers: Iterable[str] = (),
    ) -> None:
        """Replace the lists in place: every service holding this policy sees the new ones."""
        jids: dict[str, Role] = {}
        domains: dict[str, Role] = {}
        for role, entries in (
            (Role.READER, readers),
            (Role.CONTROLLER, controllers),
            (Role.OWNER, owners),
        ):
            for entry in entries:
                entry = entry.lower()
                table = domains if entry.startswith("*@") else jids
                key = entry[2:] if entry.startswith("*@") else entry
                table[key] = max(role, table.get(key, Role.STRANGER))
        # Swapped whole, on the loop thread: no request ever sees half of an update.
        self._jids, self._domains = jids, domains

    def role_of(self, jid: str) -> Role:
        """Return the role of ``jid`` (full or bare; the resource is ignored)."""
        bare = jid.split("/", 1)[0].lower()
        if "@" not in bare:
            return Role.STRANGER  # servers and components are never principals
        domain = bare.rsplit("@", 1)[1]
        return max(self._jids.get(bare, Role.STRANGER), self._domains.get(domain, Role.STRANGER))

    def allows(self, jid: str, needed: Role) -> bool:
        """True when ``jid`` holds at least the ``needed`` role."""
        return needed > Role.STRANGER and self.role_of(jid) >= needed
