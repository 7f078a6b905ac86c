"""``remotes:``: other hubs shown as data sources of this one (XEP-0326).

Each remote hub is named by an ``id`` (the ``sourceId`` people and programs
use, ``garage/door`` in chat) and reached at its full ``jid``.  The remote
stays the authority for its own hardware: it lists this hub's bare JID in its
own ``access:``.  Checks that need the rest of the file (ids clashing with
devices or with this hub's own sources, a remote that is this hub) are in
:func:`remote_problems`, called by the config validator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hubd.core.access_lists import DeviceAccess

#: The root data source every concentrator has (XEP-0326): never a remote's id.
ROOT_SOURCE = "MeteringTopology"
#: The buses hubd names its own data sources after, reserved even when no device uses one yet.
BUS_SOURCES = frozenset({"gpio", "serial", "ble"})
#: Seconds a remote may take to answer a request before its nodes are failed.
DEFAULT_REMOTE_TIMEOUT = 10.0

_FULL_JID = re.compile(r"^[^@/\s]+@[^@/\s]+/\S+$")


class RemoteSettings(BaseModel):
    """One remote hub: its data source id and its full JID."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="the data source id (sourceId), e.g. garage; people type garage/door",
    )
    jid: str = Field(description="the remote hub's full JID, e.g. garage-hub@example.org/hubd")
    timeout: float = Field(
        default=DEFAULT_REMOTE_TIMEOUT,
        gt=0,
        le=300,
        description="seconds to wait for the remote's answer before failing its nodes",
    )
    access: DeviceAccess | None = Field(
        default=None,
        description="roles on this remote's nodes only, as a device's own access: grants",
    )

    @field_validator("jid")
    @classmethod
    def _check_jid(cls, value: str) -> str:
        if not _FULL_JID.match(value):
            raise ValueError("must be the remote hub's full JID: user@domain/resource")
        local, rest = value.split("@", 1)
        domain, resource = rest.split("/", 1)
        # Local part and domain compare case-insensitively in XMPP; the resource does not.
        return f"{local.lower()}@{domain.lower()}/{resource}"

    @property
    def bare(self) -> str:
        """The remote hub's bare JID."""
        return self.jid.split("/", 1)[0]


def remote_node_key(source_id: str, node_id: str) -> str:
    """The name access checks use for a remote's node: ``garage/door``, as people type it."""
    return f"{source_id}/{node_id}"


def remote_grant_key(source_id: str) -> str:
    """The name a remote's own ``access:`` grants are kept under (every node of it)."""
    return f"{source_id}/*"


def remote_problems(
    remotes: Sequence[RemoteSettings],
    own_jid: str,
    device_ids: Iterable[str],
    own_sources: Iterable[str],
) -> list[tuple[tuple[str | int, ...], str]]:
    """Each problem with ``remotes`` as (key path, message); empty when they are fine.

    ``own_jid`` is this hub's ``xmpp.jid`` (resource optional), ``own_sources``
    the data sources its own devices make (their buses).
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    devices = set(device_ids)
    sources = {ROOT_SOURCE, *BUS_SOURCES, *own_sources}
    own_bare = own_jid.split("/", 1)[0].lower()
    seen_ids: dict[str, int] = {}
    seen_jids: dict[str, int] = {}
    for index, remote in enumerate(remotes):
        if remote.id in seen_ids:
            problems.append(
                ((index, "id"), f"{remote.id!r} is already remotes[{seen_ids[remote.id]}]'s id")
            )
        seen_ids.setdefault(remote.id, index)
        if remote.id in devices:
            problems.append(
                ((index, "id"), f"{remote.id!r} is a device id: a remote needs its own")
            )
        if remote.id in sources:
            problems.append(((index, "id"), f"{remote.id!r} is one of this hub's own data sources"))
        if remote.bare == own_bare:
            problems.append(((index, "jid"), "this is the hub's own account, not another hub"))
        if remote.jid in seen_jids:
            problems.append(((index, "jid"), f"the same hub as remotes[{seen_jids[remote.jid]}]"))
        seen_jids.setdefault(remote.jid, index)
    return problems
