"""A remote hub as one data source of this hub: its nodes as last seen, and whether it answers.

Pure core: no XMPP here.  The adapter (``hubd/xmpp/remotes.py``) fetches the
remote's tree with its own XEP-0326 requests and writes what it learnt into a
:class:`RemoteSource`; the concentrator reads from it to answer browse
requests naming the remote's ``sourceId``.  A remote that goes away keeps its
nodes, shown offline with the reason, so people still see what is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hubd.core.remote_settings import RemoteSettings, remote_node_key

_LOGGER = logging.getLogger(__name__)

#: XEP-0326 node states (the ``state`` attribute) this side uses.
STATE_OK = "None"
STATE_ERROR = "ErrorUnsigned"

#: Why a remote that lists this hub as a remote too is refused (both hubs say it).
LOOP = "a loop: each hub lists the other as a remote; not followed"
#: Why a remote through which this hub is reached again (A -> B -> C -> A) is refused.
LONG_LOOP = "a loop: this hub is reached again through the remote's own remotes; not followed"


@dataclass(frozen=True, slots=True)
class RemoteNode:
    """One node of a remote hub, as its concentrator described it."""

    node_id: str
    name: str
    node_type: str
    state: str = STATE_OK
    readable: bool = True
    controllable: bool = False
    last_changed: datetime | None = None
    message: str | None = None


class RemoteSource:
    """What this hub knows of one remote hub."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self._nodes: dict[str, RemoteNode] = {}
        self.online = False
        # Why it is offline; before the first answer the remote is simply not heard from yet.
        self.reason = "not reached yet"
        self.last_changed: datetime | None = None
        #: True once a loop was found (it lists this hub too): never followed again.
        self.looped = False
        #: Bare JIDs of the hubs the remote itself reaches (its remotes, theirs...), as it said.
        self.reach: frozenset[str] = frozenset()

    @property
    def id(self) -> str:
        """The data source id (``sourceId``)."""
        return self.settings.id

    @property
    def jid(self) -> str:
        """The remote hub's full JID."""
        return self.settings.jid

    @property
    def timeout(self) -> float:
        """Seconds to wait for the remote's answers."""
        return self.settings.timeout

    def nodes(self) -> list[RemoteNode]:
        """The remote's nodes as shown here: offline with the reason while it is."""
        if self.online:
            return list(self._nodes.values())
        return [
            replace(node, state=STATE_ERROR, message=f"{self.id}: {self.reason}")
            for node in self._nodes.values()
        ]

    def node(self, node_id: str) -> RemoteNode | None:
        """One node by its id on the remote, as :meth:`nodes` shows it."""
        found = self._nodes.get(node_id)
        if found is None or self.online:
            return found
        return replace(found, state=STATE_ERROR, message=f"{self.id}: {self.reason}")

    def replace_nodes(self, nodes: Iterable[RemoteNode]) -> None:
        """The remote answered with its tree: take it, and the remote is online."""
        if self.looped:
            return  # an answer already on its way when the loop was found
        self._nodes = {node.node_id: node for node in nodes}
        self.last_changed = datetime.now(UTC)
        if not self.online:
            _LOGGER.info("remote %s (%s) online: %d node(s)", self.id, self.jid, len(self._nodes))
        self.online = True
        self.reason = ""

    def set_offline(self, reason: str) -> bool:
        """The remote went away or stopped answering; True when this is news (logged once)."""
        if self.looped or (not self.online and self.reason == reason):
            return False
        was_online = self.online
        self.online = False
        self.reason = reason
        self.last_changed = datetime.now(UTC)
        if was_online or self._nodes:
            _LOGGER.warning("remote %s (%s) offline: %s", self.id, self.jid, reason)
        else:
            _LOGGER.info("remote %s (%s) not reachable: %s", self.id, self.jid, reason)
        return True

    def refuse_loop(self, reason: str = LOOP) -> bool:
        """The remote leads back to this hub: offline for good; True the first time."""
        if self.looped:
            return False
        self.looped = True
        self._nodes = {}  # nothing of a loop is shown, or followed
        self.reach = frozenset()
        self.online = False
        self.reason = reason
        self.last_changed = datetime.now(UTC)
        _LOGGER.error("remote %s (%s) refused: %s", self.id, self.jid, reason)
        return True


class RemoteSources:
    """Every configured remote hub, by data source id."""

    def __init__(self, settings: Sequence[RemoteSettings] = ()) -> None:
        self._sources = {remote.id: RemoteSource(remote) for remote in settings}

    def __iter__(self) -> Iterator[RemoteSource]:
        return iter(self._sources.values())

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, source_id: object) -> bool:
        return source_id in self._sources

    def get(self, source_id: str) -> RemoteSource | None:
        """The remote named ``source_id``, or None."""
        return self._sources.get(source_id)

    def by_jid(self, jid: str) -> RemoteSource | None:
        """The remote whose full JID is ``jid`` (compared as the config normalised it)."""
        local_domain, _, resource = jid.partition("/")
        wanted = f"{local_domain.lower()}/{resource}"
        return next((s for s in self._sources.values() if s.jid == wanted), None)

    def reach(self) -> frozenset[str]:
        """Bare JIDs of every hub reached from this one: its remotes, and what they reach."""
        out: set[str] = set()
        for source in self._sources.values():
            if source.looped:
                continue  # a refused loop is not followed: the loop is cut once, here
            out.add(source.settings.bare)
            out |= source.reach
        return frozenset(out)

    def by_bare(self, jid: str) -> RemoteSource | None:
        """The remote whose account is ``jid``'s (any resource): another hub asking this one."""
        bare = jid.split("/", 1)[0].lower()
        return next((s for s in self._sources.values() if s.settings.bare == bare), None)

    def readable_keys(self, readable: Callable[[str], bool]) -> list[str]:
        """``garage/door`` of every remote node shown now that ``readable`` allows.

        For a subscription naming no node (all nodes): like the hub's own nodes,
        those there now; a node a remote adds later is not included.
        """
        return [
            key
            for source in self._sources.values()
            for node in source.nodes()
            if node.readable and readable(key := remote_node_key(source.id, node.node_id))
        ]
