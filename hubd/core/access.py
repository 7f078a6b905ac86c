"""Who may do what: one place that every interface asks.

Roles come from the ``access:`` lists (bare JIDs or ``*@domain``); the
strongest matching role wins, and everyone else is a stranger.  A device may
grant more with its own ``access:`` key (``readers``, ``controllers``,
``owners``): those roles hold for that device only.

Every entry point (XEP-0323/0325/0326, events, chat, ad-hoc commands, group
chat, presence subscriptions) does the same two things:

1. :meth:`AccessPolicy.admit` once per request: the sender's rate limit, then
   "may this sender do this kind of thing on any node at all?" (a stranger to
   every node is refused ``forbidden`` before anything is looked up), then
   the size of the request;
2. :meth:`AccessPolicy.allows` with the node id for each node involved, and
   :meth:`AccessPolicy.visible` to filter listings.  A node the requester may
   not see is answered exactly like a node that does not exist, so nobody
   learns which devices a house has beyond the ones they were given.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, TypeVar
from xml.etree.ElementTree import Element

from hubd.core.access_lists import DeviceAccess
from hubd.core.limits import LimitSettings, RateLimiter, check_payload
from hubd.core.remote_settings import remote_grant_key
from hubd.errors import AccessDenied, UnknownParameter

if TYPE_CHECKING:
    from hubd.core.config import Config

_AUDIT = logging.getLogger("hubd.audit")

NodeT = TypeVar("NodeT")

PROVISIONED_CACHE = 1024


class Role(IntEnum):
    """What a requester may do; each role includes the ones below it."""

    STRANGER = 0
    READER = 1  # read, subscribe, browse
    CONTROLLER = 2  # + control
    OWNER = 3  # + administer (see the README's SECURITY section)


class _Grants:
    """One set of lists, compiled: bare JID -> role, domain -> role."""

    __slots__ = ("domains", "jids")

    def __init__(
        self, owners: Iterable[str], controllers: Iterable[str], readers: Iterable[str]
    ) -> None:
        self.jids: dict[str, Role] = {}
        self.domains: dict[str, Role] = {}
        for role, entries in (
            (Role.READER, readers),
            (Role.CONTROLLER, controllers),
            (Role.OWNER, owners),
        ):
            for entry in entries:
                entry = entry.lower()
                table = self.domains if entry.startswith("*@") else self.jids
                key = entry[2:] if entry.startswith("*@") else entry
                table[key] = max(role, table.get(key, Role.STRANGER))

    def role(self, bare: str, domain: str) -> Role:
        return max(self.jids.get(bare, Role.STRANGER), self.domains.get(domain, Role.STRANGER))


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a provisioning server said of one JID (XEP-0324), narrowed as it said.

    ``canRead`` may narrow reading to some nodes and fields, ``canControl``
    control to some nodes and parameters; None means "not narrowed".  A node
    the JID may control it may also read (a control form shows the values).
    """

    reads: bool
    controls: bool
    read_nodes: frozenset[str] | None = None
    read_fields: frozenset[str] | None = None
    control_nodes: frozenset[str] | None = None
    parameters: frozenset[str] | None = None

    def role_on(self, node_id: str) -> Role:
        """The role on one node."""
        if self.controls and (self.control_nodes is None or node_id in self.control_nodes):
            return Role.CONTROLLER
        if self.reads and (self.read_nodes is None or node_id in self.read_nodes):
            return Role.READER
        return Role.STRANGER

    def hub_wide(self) -> Role:
        """The role on every node, whatever the hub adds later."""
        if self.controls and self.control_nodes is None:
            return Role.CONTROLLER
        if self.reads and self.read_nodes is None:
            return Role.READER
        return Role.STRANGER

    def best(self) -> Role:
        """The strongest role on some node."""
        if self.controls and self.control_nodes != frozenset():
            return Role.CONTROLLER
        if self.reads and self.read_nodes != frozenset():
            return Role.READER
        return Role.STRANGER

    def fields(self, node_id: str, needed: Role) -> frozenset[str] | None:
        """The fields (or parameters) of ``node_id`` open to ``needed``; None for all."""
        if needed >= Role.CONTROLLER:
            return self.parameters
        if self.reads and (self.read_nodes is None or node_id in self.read_nodes):
            return self.read_fields
        return self.parameters  # readable only because it may be controlled


def _bare(jid: str) -> tuple[str, str] | None:
    """(bare JID, domain), lowercased; None for servers and components (never principals)."""
    bare = jid.split("/", 1)[0].lower()
    if "@" not in bare:
        return None
    return bare, bare.rsplit("@", 1)[1]


class AccessPolicy:
    """Maps a requester's JID to its role, hub-wide and per device; carries the abuse limits."""

    def __init__(
        self,
        owners: Iterable[str] = (),
        controllers: Iterable[str] = (),
        readers: Iterable[str] = (),
        *,
        devices: Mapping[str, DeviceAccess] | None = None,
        limits: LimitSettings | None = None,
    ) -> None:
        self._global = _Grants((), (), ())
        self._devices: dict[str, _Grants] = {}
        # XEP-0324: roles a provisioning server gave to JIDs the lists do not name.
        self.provisioning: str | None = None
        self.resolver: Callable[[str], Awaitable[Provisioned | None]] | None = None
        self._provisioned: OrderedDict[str, Provisioned] = OrderedDict()
        #: Ask the owners by chat about strangers' presence subscriptions.
        self.ask_owners = False
        #: XEP-0347: owners a Thing registry named (claimed), merged into the owners.
        self.claimed: tuple[str, ...] = ()
        #: True for a hub with a registry and no owner of its own: until it is
        #: claimed it grants nobody anything (set once, at start, like provisioning).
        self.claimable: bool | None = None
        self._listed: tuple[Iterable[str], Iterable[str], Iterable[str]] = ((), (), ())
        self._listed_devices: Mapping[str, DeviceAccess] = {}
        self.limits = limits or LimitSettings()
        #: One limiter for every entry point: a sender's requests count together.
        self.limiter = RateLimiter(self.limits)
        self.update(owners, controllers, readers, devices=devices)

    @classmethod
    def from_config(cls, config: Config) -> AccessPolicy:
        """The policy of a validated configuration (its lists, devices' grants and limits)."""
        policy = cls()
        policy.apply(config)
        return policy

    def apply(self, config: Config) -> None:
        """Take the lists, per-device grants and limits of ``config`` (start and reload)."""
        if self.claimable is None:
            self.claimable = config.discovery is not None and not config.access.owners
        self.update(
            config.access.owners,
            config.access.controllers,
            config.access.readers,
            devices={
                **{d.id: d.access for d in config.devices if d.access is not None},
                # A remote's own access: holds for each of its nodes (garage/door).
                **{remote_grant_key(r.id): r.access for r in config.remotes if r.access},
            },
        )
        self.limits = config.limits
        self.limiter.settings = config.limits
        self.ask_owners = config.access.ask_owners
        if self.provisioning is None:
            # Set once, at start: the provisioning service talks to this server until
            # a restart (a reload that changes it says so).
            self.provisioning = config.access.provisioning

    def update(
        self,
        owners: Iterable[str] = (),
        controllers: Iterable[str] = (),
        readers: Iterable[str] = (),
        *,
        devices: Mapping[str, DeviceAccess] | None = None,
    ) -> None:
        """Replace the lists in place: every service holding this policy sees the new ones."""
        self._listed = (tuple(owners), tuple(controllers), tuple(readers))
        self._listed_devices = dict(devices or {})
        self._compile()

    def set_claimed(self, owners: Iterable[str]) -> None:
        """The owners a Thing registry named (XEP-0347), merged with the listed owners."""
        self.claimed = tuple(o.lower() for o in owners)
        self._compile()

    @property
    def locked(self) -> bool:
        """True while an unclaimed hub waits for its owner: nobody holds any role."""
        return bool(self.claimable) and not self.claimed

    def _compile(self) -> None:
        owners, controllers, readers = self._listed
        devices = self._listed_devices
        if self.locked:
            owners, controllers, readers, devices = (), (), (), {}
        compiled = _Grants((*owners, *self.claimed), controllers, readers)
        per_device = {
            node_id: _Grants(grant.owners, grant.controllers, grant.readers)
            for node_id, grant in devices.items()
        }
        # Swapped whole, on the loop thread: no request ever sees half of an update.
        self._global, self._devices = compiled, per_device

    # --- roles ---------------------------------------------------------------------

    def role_of(self, jid: str) -> Role:
        """The hub-wide role of ``jid`` (full or bare; the resource is ignored)."""
        key = _bare(jid)
        if key is None:
            return Role.STRANGER
        role = self._global.role(*key)
        provisioned = self._provisioned.get(key[0])
        return role if provisioned is None else max(role, provisioned.hub_wide())

    def owner_jids(self) -> list[str]:
        """The owners listed by bare JID (``*@domain`` entries name nobody to write to)."""
        return sorted(jid for jid, role in self._global.jids.items() if role is Role.OWNER)

    def listed_jids(self) -> list[str]:
        """Every bare JID the hub-wide lists name, whatever its role."""
        return sorted(self._global.jids)

    # --- provisioning (XEP-0324) -----------------------------------------------------

    def must_ask(self, jid: str) -> bool:
        """Whether :meth:`ensure` would ask the provisioning server (else it returns at once)."""
        key = _bare(jid)
        if self.resolver is None or key is None or key[0] in self._provisioned:
            return False
        return self.best_role(jid) <= Role.STRANGER

    async def ensure(self, jid: str) -> None:
        """Ask the provisioning server about a JID the lists do not name (once, then cached)."""
        key = _bare(jid)
        if self.resolver is None or key is None or not self.must_ask(jid):
            return
        answer = await self.resolver(key[0])
        if answer is not None:  # None: no answer (timeout); ask again next time
            self.grant_provisioned(key[0], answer)

    def grant_provisioned(self, bare: str, answer: Provisioned) -> None:
        """Remember what the provisioning server said of ``bare`` (bounded, oldest forgotten)."""
        self._provisioned[bare.lower()] = answer
        self._provisioned.move_to_end(bare.lower())
        while len(self._provisioned) > PROVISIONED_CACHE:
            self._provisioned.popitem(last=False)

    def forget_provisioned(self, bare: str) -> None:
        """Forget one answer (the server unfriended that JID)."""
        self._provisioned.pop(bare.lower(), None)

    def clear_provisioned(self) -> None:
        """Forget every answer (clearCache)."""
        self._provisioned.clear()

    def role_for(self, jid: str, node_id: str) -> Role:
        """The role of ``jid`` on one node: hub-wide, or more if the device grants it."""
        key = _bare(jid)
        if key is None:
            return Role.STRANGER
        role = self.role_of(jid)
        if (provisioned := self._provisioned.get(key[0])) is not None:
            role = max(role, provisioned.role_on(node_id))
        grants = self._grants_on(node_id)
        return role if grants is None else max(role, grants.role(*key))

    def _grants_on(self, node_id: str) -> _Grants | None:
        grants = self._devices.get(node_id)
        if grants is None and "/" in node_id:  # a remote's node: its remote's grants
            grants = self._devices.get(remote_grant_key(node_id.split("/", 1)[0]))
        return grants

    def fields_for(self, jid: str, node_id: str, needed: Role) -> frozenset[str] | None:
        """The fields of ``node_id`` that ``jid`` may use with ``needed``; None for all.

        Only a provisioning server narrows fields (its canRead field list, its
        canControl parameter list); the access lists grant whole devices.
        Callers have checked :meth:`allows` first.
        """
        if not self._provisioned:
            return None  # no provisioning answers: nothing narrowed (every event asks)
        key = _bare(jid)
        if key is None or (provisioned := self._provisioned.get(key[0])) is None:
            return None
        grants = self._grants_on(node_id)
        listed = self._global.role(*key)
        if grants is not None:
            listed = max(listed, grants.role(*key))
        if listed >= needed:
            return None
        return provisioned.fields(node_id, needed)

    def check_parameter(self, jid: str, node_id: str, name: str) -> None:
        """Refuse a parameter a provisioning server left out (XEP-0324 canControl).

        One it may read is ``forbidden`` (:class:`~hubd.errors.AccessDenied`);
        one it may not even read is answered like a missing field
        (:class:`~hubd.errors.UnknownParameter`).  The same for the hub's own
        nodes and a remote's (``garage/light``).
        """
        allowed = self.fields_for(jid, node_id, Role.CONTROLLER)
        if allowed is None or name in allowed:
            return
        readable = self.fields_for(jid, node_id, Role.READER)
        if readable is None or name in readable:
            raise AccessDenied(f"Access denied: you may not control {node_id}.{name}.")
        raise UnknownParameter(f"{node_id} has no field {name!r}", field=name)

    def best_role(self, jid: str) -> Role:
        """The strongest role ``jid`` holds anywhere (hub-wide or on some device)."""
        key = _bare(jid)
        if key is None:
            return Role.STRANGER
        best = self.role_of(jid)
        if (provisioned := self._provisioned.get(key[0])) is not None:
            best = max(best, provisioned.best())
        for grants in self._devices.values():
            best = max(best, grants.role(*key))
        return best

    def allows(self, jid: str, needed: Role, node_id: str | None = None) -> bool:
        """True when ``jid`` holds at least ``needed``: on ``node_id``, or hub-wide when None."""
        if needed <= Role.STRANGER:
            return False
        role = self.role_of(jid) if node_id is None else self.role_for(jid, node_id)
        return role >= needed

    def allows_any(self, jid: str, needed: Role) -> bool:
        """True when ``jid`` holds ``needed`` hub-wide or on at least one device."""
        return needed > Role.STRANGER and self.best_role(jid) >= needed

    def visible(
        self, jid: str, nodes: Mapping[str, NodeT], needed: Role = Role.READER
    ) -> list[NodeT]:
        """The nodes (id -> node, in order) on which ``jid`` holds ``needed``."""
        if self.allows(jid, needed):
            return list(nodes.values())  # hub-wide: every node, no per-node lookups
        return [node for node_id, node in nodes.items() if self.allows(jid, needed, node_id)]

    # --- the entry check -------------------------------------------------------------

    def admit(self, jid: str, needed: Role, payload: Element | None = None) -> None:
        """The check every request passes first; raises when it may go no further.

        In this order: the sender's rate (:class:`~hubd.core.limits.RateLimited`),
        then ``needed`` on some node (:class:`~hubd.errors.AccessDenied`, the
        same for every stranger whatever it asked), then the request's size
        (:class:`~hubd.core.limits.PolicyViolation`).
        """
        self.limiter.check(jid)
        if not self.allows_any(jid, needed):
            raise AccessDenied("Access denied.")
        if payload is not None:
            check_payload(payload, self.limits)


def audit_refused(actor: str, what: str, reason: object) -> None:
    """Audit a control refused before it reached the hub (which audits the ones it tries)."""
    _AUDIT.info("control by %s: %s refused: %s", actor, what, reason)
