"""A remote hub's node as a node of this hub, for the event engine (``garage/door``).

Pure core: no XMPP here.  The event engine keeps subscriptions, the store,
the offline queue and delay stamps per node of its table; a subscription on a
remote's node is one on a :class:`RemoteNodeProxy` of that table, keyed
``<sourceId>/<nodeId>`` as people type it.  The wire side
(``hubd/xmpp/remote_events.py``) subscribes at the remote once per proxy that
has subscribers here, and hands each event the remote sends to :meth:`ingest`:
its values are cached, fields first seen are added to the proxy's spec, and
the listeners (the engine) get them as values of the proxy, so every
guarantee of the engine holds from this hub to its subscribers.

The table answers for any node id of a configured remote, known yet or not:
a subscription restored at start for a remote not reached yet is kept.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, cast

from hubd.core.driver import AnyDriver, DriverConfig
from hubd.core.model import ONLINE_FIELD, FieldSpec, FieldValue, NodeSpec, NodeState
from hubd.core.node import Node
from hubd.core.remote_settings import remote_node_key

_LOGGER = logging.getLogger(__name__)

#: The driver kind of proxies (never started: there is no hardware here).
REMOTE_KIND = "remote.node"
#: Fields a proxy learns from its remote at most (as for dynamic drivers).
MAX_REMOTE_FIELDS = 64


class RemoteNodeProxy(Node):
    """A proxy of one node of a remote hub; ``source_id``/``remote_id`` name it there."""

    source_id: str = ""
    remote_id: str = ""

    @property
    def source(self) -> str:
        """The remote's data source id: the ``sourceId`` of its events here."""
        return self.source_id


def split_key(key: str) -> tuple[str, str]:
    """``garage/door`` -> (``garage``, ``door``)."""
    source_id, _, node_id = key.partition("/")
    return source_id, node_id


class RemoteNodeTable(Mapping[str, Node]):
    """The proxies of remote nodes, made on first use for any configured remote."""

    def __init__(self, source_ids: Sequence[str]) -> None:
        self._sources = frozenset(source_ids)
        self._nodes: dict[str, RemoteNodeProxy] = {}
        #: Called with each proxy's new values (the event engine's ``on_values``).
        self.listeners: list[Callable[[Node, Sequence[FieldValue]], None]] = []

    def is_remote(self, key: str) -> bool:
        """True when ``key`` names a node of a configured remote (``garage/door``)."""
        source_id, node_id = split_key(key)
        return bool(node_id) and source_id in self._sources

    def __getitem__(self, key: str) -> Node:
        found = self._nodes.get(key)
        if found is not None:
            return found
        if not self.is_remote(key):
            raise KeyError(key)
        source_id, node_id = split_key(key)
        config = DriverConfig.model_construct(id=key, name=key, driver=REMOTE_KIND, access=None)
        spec = NodeSpec(fields=(ONLINE_FIELD,))
        proxy = RemoteNodeProxy(config=config, driver=_NO_DRIVER, spec=spec, state=NodeState.ONLINE)
        proxy.source_id, proxy.remote_id = source_id, node_id
        self._nodes[key] = proxy
        return proxy

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (key in self._nodes or self.is_remote(key))

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._nodes))  # only the proxies made so far

    def __len__(self) -> int:
        return len(self._nodes)

    def ingest(
        self, source_id: str, node_id: str, values: Sequence[tuple[FieldSpec, FieldValue]]
    ) -> None:
        """Values the remote sent for one of its nodes: cache them, tell the listeners."""
        key = remote_node_key(source_id, node_id)
        if not self.is_remote(key) or not values:
            return
        node = self[key]
        known = {spec.name for spec in node.spec.fields}
        new = list({spec.name: spec for spec, _ in values if spec.name not in known}.values())
        room = MAX_REMOTE_FIELDS - len(known)
        if new and room > 0:
            node.spec = NodeSpec(fields=(*node.spec.fields, *new[:room]))
            _LOGGER.debug("remote node %s: new field(s) %s", key, ", ".join(s.name for s in new))
        accepted = [value for _, value in values if node.spec.get(value.name) is not None]
        for value in accepted:
            node.cache[value.name] = value
        for listener in tuple(self.listeners):
            listener(node, accepted)


def chain_nodes(local: dict[str, Node], remote: Mapping[str, Node] | None) -> Mapping[str, Node]:
    """This hub's nodes, then the proxies of remote nodes (read only: a live view of both)."""
    if remote is None:
        return local
    # ChainMap only reads the mappings after the first; a Mapping does for that.
    return ChainMap(local, cast(MutableMapping[str, Node], remote))


class _Unused:
    """Stands for a proxy's driver: a proxy is never started, read or written here."""

    dynamic_fields = False

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a remote node has no driver here ({name})")


#: Typed as a driver so that a proxy is a Node.
_NO_DRIVER = cast(AnyDriver, _Unused())
