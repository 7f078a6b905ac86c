"""Who a published node reaches, and which devices may be published to it.

A pubsub node has one audience for all its items, while the access lists
may grant some people one device only (a device's own ``access:``).  What
someone gets through pubsub must never exceed what the lists give them, so a
device is published to a node only when every entry of the node's audience may
read that device.

- On a service (``whitelist``), the audience is the members the hub sets: the
  hub-wide owners, controllers and readers listed by bare JID.  A ``*@domain``
  entry names nobody an affiliation can be given to, so it is left out.
- On PEP (``presence``), the audience is everyone who sees the hub's presence:
  the hub approves that for the hub-wide lists *and* for every per-device
  grant, so a grant to one device widens the audience of every item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hubd.core.access import AccessPolicy, Role
from hubd.core.config import Config


def audience(config: Config) -> tuple[str, ...]:
    """The entries (bare JIDs, ``*@domain``) that can read the node of ``config.pubsub``."""
    lists = config.access
    entries = [*lists.owners, *lists.controllers, *lists.readers]
    if config.pubsub is None or not config.pubsub.pep:
        return tuple(dict.fromkeys(entries))
    for device in config.devices:
        if device.access is not None:
            grant = device.access
            entries += [*grant.owners, *grant.controllers, *grant.readers]
    return tuple(dict.fromkeys(entries))


def members(config: Config) -> tuple[str, ...]:
    """The bare JIDs made ``member`` of a service's node (``*@domain`` entries cannot be)."""
    return tuple(entry for entry in audience(config) if not entry.startswith("*@"))


def covered(policy: AccessPolicy, entries: Iterable[str], node_id: str) -> bool:
    """True when every entry may read ``node_id`` (``*@domain``: the whole domain may)."""
    # A "*@domain" entry, asked as a JID, matches only the domain-wide grants: the lists
    # never hold "*" as a local part, so no single JID's grant can stand in for it.
    return all(policy.allows(entry, Role.READER, node_id) for entry in entries)


def publishable(config: Config, policy: AccessPolicy) -> tuple[str, ...]:
    """The device ids of ``config.pubsub`` whose readers include the node's whole audience."""
    if config.pubsub is None:
        return ()
    wanted: Sequence[str] = config.pubsub.devices or [d.id for d in config.devices]
    reach = audience(config)
    return tuple(node_id for node_id in wanted if covered(policy, reach, node_id))
