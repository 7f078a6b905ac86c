"""XEP-0326 for remote hubs: read a remote's tree, and show it as a child data source here.

Pure: ElementTree in and out, no slixmpp.  Two halves:

- the client side, used by ``hubd/xmpp/remotes.py``: the ``getAllNodes`` request
  this hub sends to a remote, and :func:`parse_remote_nodes` for its answer;
- the server side, :class:`RemoteBrowse`: requests naming a remote's ``sourceId``
  (``getAllNodes``, ``getRootNodes``, ``getNode(s)``, ``containsNode(s)``,
  ``getChildNodes``, ``getAncestors``) answered from what the remote last said.

A remote is a child of ``MeteringTopology``; its nodes are *not* listed in
``MeteringTopology`` itself: node ids are unique within one hub only (two Pis
may both have a ``porch-light``), so a remote node is always named by its
``sourceId`` and ``nodeId`` together.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.access import AccessPolicy, Role
from hubd.core.remote_settings import remote_grant_key, remote_node_key
from hubd.core.remote_source import STATE_ERROR, RemoteNode, RemoteSource, RemoteSources
from hubd.errors import BadRequest
from hubd.xmpp.concentrator import ROOT_SOURCE, Answer, Result, failure_answer, response_element
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.sensordata_xml import parse_bool_attr, qname, require

#: Most nodes taken from one remote answer: a remote is trusted for its data, not for its size.
MAX_REMOTE_NODES = 1000

#: hubd's own extension of ``getAllNodesResponse`` (ignored by other concentrators'
#: clients): the bare JIDs of the hubs the answering hub reaches through its
#: remotes, so that a hub fetching it finds a loop of any length (A -> B -> C -> A).
NS_REMOTE_HUBS = "urn:hubd:remote-hubs:0"
#: Most hub JIDs taken from one answer.
MAX_REACH = 100


def build_reach(jids: frozenset[str]) -> Element | None:
    """``<hubs xmlns='urn:hubd:remote-hubs:0'><hub jid='...'/></hubs>``; None for no hubs."""
    if not jids:
        return None
    hubs = Element(qname(NS_REMOTE_HUBS, "hubs"))
    for jid in sorted(jids):
        SubElement(hubs, qname(NS_REMOTE_HUBS, "hub"), {"jid": jid})
    return hubs


def parse_reach(response: Element) -> frozenset[str]:
    """The bare JIDs a ``getAllNodesResponse`` says its hub reaches (none: an empty set)."""
    hubs = response.find(qname(NS_REMOTE_HUBS, "hubs"))
    if hubs is None:
        return frozenset()
    jids = [hub.get("jid", "").split("/", 1)[0].lower() for hub in hubs]
    if len(jids) > MAX_REACH:
        raise BadRequest(f"more than {MAX_REACH} hubs reached")
    return frozenset(jid for jid in jids if jid)


def build_get_all_nodes() -> Element:
    """The request for every node of a remote's root source, with their state messages."""
    return Element(
        qname(NS_CONCENTRATORS, "getAllNodes"),
        {"sourceId": ROOT_SOURCE, "parameters": "false", "messages": "true"},
    )


def build_subscribe() -> Element:
    """The request for a remote's tree events (every kind, with state messages)."""
    return Element(
        qname(NS_CONCENTRATORS, "subscribe"),
        {"sourceId": ROOT_SOURCE, "parameters": "false", "messages": "true"},
    )


def parse_remote_nodes(response: Element) -> list[RemoteNode]:
    """The nodes of a ``getAllNodesResponse``; BadRequest when it is not a good one."""
    if response.tag != qname(NS_CONCENTRATORS, "getAllNodesResponse"):
        raise BadRequest(f"not a getAllNodesResponse: {response.tag}")
    result = response.get("result", "OK")
    if result != Result.OK.value:
        raise BadRequest(f"the remote answered {result}")
    nodes: dict[str, RemoteNode] = {}
    for element in response.findall(qname(NS_CONCENTRATORS, "node")):
        node_id = require(element, "nodeId", "node")
        if node_id in nodes:
            continue  # the same node twice: the first one is kept
        if len(nodes) >= MAX_REMOTE_NODES:
            raise BadRequest(f"more than {MAX_REMOTE_NODES} nodes")
        changed = element.get("lastChanged")
        message = element.find(qname(NS_CONCENTRATORS, "message"))
        try:
            nodes[node_id] = RemoteNode(
                node_id=node_id,
                name=element.get("displayName") or node_id,
                node_type=element.get("nodeType") or "hubd.Node",
                state=element.get("state") or "None",
                readable=xsd.parse_boolean(element.get("isReadable", "false")),
                controllable=xsd.parse_boolean(element.get("isControllable", "false")),
                last_changed=None if changed is None else xsd.parse_datetime(changed),
                message=None if message is None else (message.text or None),
            )
        except ValueError as err:
            raise BadRequest(f"node {node_id!r}: {err}") from None
    return list(nodes.values())


def remote_node_attributes(node: RemoteNode, source_id: str) -> dict[str, str]:
    """A ``<node>``'s attributes for a remote's node, under this hub's ``source_id``."""
    attrs = {
        "nodeId": node.node_id,
        "displayName": node.name,
        "nodeType": node.node_type,
        "sourceId": source_id,
        "state": node.state,
        "hasChildren": "false",
        "isReadable": xsd.format_boolean(node.readable),
        "isControllable": xsd.format_boolean(node.controllable),
        "hasCommands": "false",
    }
    if node.last_changed is not None:
        attrs["lastChanged"] = xsd.format_datetime(node.last_changed)
    return attrs


def _fill(element: Element, node: RemoteNode, request: Element) -> None:
    if parse_bool_attr(request, "messages", request.tag) and node.message:
        kind = "Error" if node.state == STATE_ERROR else "Information"
        attrs = {"type": kind}
        if node.last_changed is not None:
            attrs["timestamp"] = xsd.format_datetime(node.last_changed)
        SubElement(element, qname(NS_CONCENTRATORS, "message"), attrs).text = node.message


class _NotFound(Exception):
    pass


# The commands answered for a remote's source, and where the source id is read.
_ON_REQUEST = ("getAllNodes", "getRootNodes", "getNode", "containsNode", "getChildNodes")
_ON_NODES = ("getNodes", "containsNodes")


class RemoteBrowse:
    """Answers the browse requests that name a remote hub's ``sourceId``."""

    def __init__(self, remotes: RemoteSources, access: AccessPolicy) -> None:
        self.remotes = remotes
        self.access = access

    def data_sources(self, viewer: str) -> list[Element]:
        """A ``<dataSource>`` per remote ``viewer`` may browse (some of its nodes readable)."""
        out = []
        for source in self.remotes:
            if not self._browsable(viewer, source):
                continue
            attrs = {
                "sourceId": source.id,
                "name": f"{source.id} hub" if source.online else f"{source.id} hub (offline)",
                "hasChildren": "false",
            }
            if source.last_changed is not None:
                attrs["lastChanged"] = xsd.format_datetime(source.last_changed)
            out.append(Element(qname(NS_CONCENTRATORS, "dataSource"), attrs))
        return out

    def reach_element(self) -> Element | None:
        """The hubs reached from this one, for a ``getAllNodes`` answer (:func:`build_reach`)."""
        return build_reach(self.remotes.reach())

    def handles(self, command: str, request: Element) -> bool:
        """True when ``request`` is about a remote's source (and so answered here)."""
        if command in _ON_REQUEST:
            return request.get("sourceId") in self.remotes
        if command in _ON_NODES:
            refs = request.findall(qname(NS_CONCENTRATORS, "node"))
            return any(ref.get("sourceId") in self.remotes for ref in refs)
        return False

    def handle(self, viewer: str, command: str, request: Element) -> Answer:
        """Answer ``command`` (one :meth:`handles` accepted) for ``viewer``."""
        try:
            if command == "containsNode":
                return Answer(self._contains(viewer, command, [request]))
            if command == "containsNodes":
                refs = request.findall(qname(NS_CONCENTRATORS, "node"))
                return Answer(self._contains(viewer, command, refs))
            if command in ("getAllNodes", "getRootNodes"):
                source = self._source(viewer, require(request, "sourceId", command))
                nodes = [n for n in source.nodes() if self._readable(viewer, source, n)]
                return Answer(self._node_list(command, request, source, nodes))
            if command == "getNodes":
                found = [
                    self._find(viewer, ref, command)
                    for ref in request.findall(qname(NS_CONCENTRATORS, "node"))
                ]
                response = response_element(command)
                for source, node in found:
                    self._add_node(response, request, source, node)
                return Answer(response)
            source, node = self._find(viewer, request, command)
            if command == "getChildNodes":
                return Answer(response_element(command))  # remote devices have no child nodes
            response = response_element(command, attrs=remote_node_attributes(node, source.id))
            _fill(response, node, request)
            return Answer(response)
        except _NotFound as missing:
            return failure_answer(command, Result.NOT_FOUND, str(missing))
        except BadRequest as err:
            return failure_answer(command, Result.FORM_ERROR, str(err))

    def _browsable(self, viewer: str, source: RemoteSource) -> bool:
        """True when ``viewer`` may read some of the remote's nodes here.

        Hub-wide, through the remote's own grants, or on some of its nodes only
        (a provisioning server's canRead narrowed to ``garage/door``).
        """
        if self.access.allows(viewer, Role.READER, remote_grant_key(source.id)):
            return True
        return any(self._readable(viewer, source, node) for node in source.nodes())

    def _readable(self, viewer: str, source: RemoteSource, node: RemoteNode) -> bool:
        key = remote_node_key(source.id, node.node_id)
        return self.access.allows(viewer, Role.READER, key)

    def _source(self, viewer: str, source_id: str) -> RemoteSource:
        source = self.remotes.get(source_id)
        if source is None or not self._browsable(viewer, source):
            raise _NotFound(f"No data source {source_id!r}.")
        return source

    def _find(self, viewer: str, ref: Element, where: str) -> tuple[RemoteSource, RemoteNode]:
        node_id = require(ref, "nodeId", where)
        source_id = ref.get("sourceId") or ROOT_SOURCE
        source = self._source(viewer, source_id)
        node = source.node(node_id)
        if node is None or not self._readable(viewer, source, node):
            raise _NotFound(f"No node {node_id!r} in {source_id!r}.")
        return source, node

    def _contains(self, viewer: str, command: str, refs: list[Element]) -> Element:
        values = []
        for ref in refs:
            try:
                self._find(viewer, ref, command)
                values.append(True)
            except _NotFound:
                values.append(False)
        response = response_element(command)
        if command == "containsNode":
            response.text = xsd.format_boolean(values[0])
        else:
            for value in values:
                SubElement(response, qname(NS_CONCENTRATORS, "value")).text = xsd.format_boolean(
                    value
                )
        return response

    def _node_list(
        self, command: str, request: Element, source: RemoteSource, nodes: list[RemoteNode]
    ) -> Element:
        response = response_element(command)
        for node in nodes:
            self._add_node(response, request, source, node)
        return response

    def _add_node(
        self, response: Element, request: Element, source: RemoteSource, node: RemoteNode
    ) -> None:
        attrs = remote_node_attributes(node, source.id)
        child = SubElement(response, qname(NS_CONCENTRATORS, "node"), attrs)
        _fill(child, node, request)
