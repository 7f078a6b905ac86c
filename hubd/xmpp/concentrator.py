"""XEP-0326 concentrator: the hub's node tree, browsed by data source.

Pure request handling: an ``<iq>`` payload in, a response payload out (plus,
on failure, the XMPP error condition to send beside it, since the XEP's own
failure examples omit the RFC 6120 ``<error/>`` that clients need).  The
slixmpp glue lives in ``hubd/xmpp/iot.py``.

Data sources: ``MeteringTopology`` (the root the XEP requires of sensor
concentrators, holding every node) with one child source per bus present
(``gpio``, ``serial``, ``ble``, ...) holding that bus's nodes.  Node ids are
unique in the whole hub, so a node is found by its id in any source that
holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.node import Node
from hubd.errors import AccessDenied, BadRequest, HubdError
from hubd.xmpp.concentrator_xml import (
    NS_CONCENTRATORS,
    STATE_NAMES,
    add_messages,
    add_parameters,
    lexical,
    node_attributes,
    node_parameters,
)
from hubd.xmpp.errors import ErrorCondition, condition_for
from hubd.xmpp.sensordata_xml import (
    local_name,
    parse_bool_attr,
    qname,
    require,
)

NS_DATA_FORMS = "jabber:x:data"
NS_XDATA_DYNAMIC = "urn:xmpp:xdata:dynamic"
ROOT_SOURCE = "MeteringTopology"
BASE_CLASS = "hubd.Node"


class Result(StrEnum):
    """XEP-0326 response codes."""

    OK = "OK"
    NOT_FOUND = "NotFound"
    INSUFFICIENT_PRIVILEGES = "InsufficientPrivileges"
    LOCKED = "Locked"
    NOT_IMPLEMENTED = "NotImplemented"
    FORM_ERROR = "FormError"
    OTHER_ERROR = "OtherError"


_CONDITIONS: dict[Result, tuple[str, str]] = {
    Result.NOT_FOUND: ("cancel", "item-not-found"),
    Result.INSUFFICIENT_PRIVILEGES: ("cancel", "forbidden"),
    Result.LOCKED: ("wait", "conflict"),
    Result.NOT_IMPLEMENTED: ("cancel", "feature-not-implemented"),
    Result.FORM_ERROR: ("modify", "bad-request"),
    Result.OTHER_ERROR: ("cancel", "internal-server-error"),
}


TREE_EVENTS = (
    "nodeAdded",
    "nodeUpdated",
    "nodeStatusChanged",
    "nodeRemoved",
    "nodeMovedUp",
    "nodeMovedDown",
)


@dataclass
class TreeSubscription:
    """Data-source events one client asked for (kept only while both are present)."""

    source_id: str
    events: frozenset[str]
    parameters: bool
    messages: bool


@dataclass(frozen=True, slots=True)
class Answer:
    """What to send back: the payload, and the error condition when it is a failure."""

    payload: Element
    error: ErrorCondition | None = None


class ChildSources(Protocol):
    """More data sources under ``MeteringTopology`` than the hub's own (remote hubs)."""

    def data_sources(self, viewer: str) -> list[Element]:
        """Their ``<dataSource>`` elements as ``viewer`` may see them."""

    def handles(self, command: str, request: Element) -> bool:
        """True when ``request`` names one of them."""

    def handle(self, viewer: str, command: str, request: Element) -> Answer:
        """Answer such a request."""

    def reach_element(self) -> Element | None:
        """The hubs reachable through them, added to a ``getAllNodes`` answer (loops)."""


class _Failure(Exception):
    def __init__(self, result: Result, text: str) -> None:
        self.result = result
        self.text = text
        super().__init__(text)


class Concentrator:
    """Answers XEP-0326 requests about the hub's nodes."""

    def __init__(
        self, hub: Hub, access: AccessPolicy, children: ChildSources | None = None
    ) -> None:
        self.hub = hub
        self.access = access
        self.children = children
        self._commands: dict[str, Callable[[Element], Element]] = {
            "getCapabilities": self._get_capabilities,
            "getAllDataSources": self._get_all_data_sources,
            "getRootDataSources": self._get_root_data_sources,
            "getChildDataSources": self._get_child_data_sources,
            "containsNode": self._contains_node,
            "containsNodes": self._contains_nodes,
            "getNode": self._get_node,
            "getNodes": self._get_nodes,
            "getAllNodes": self._get_all_nodes,
            "getNodeInheritance": self._get_node_inheritance,
            "getRootNodes": self._get_root_nodes,
            "getChildNodes": self._get_child_nodes,
            "getAncestors": self._get_ancestors,
            "getNodeParametersForEdit": self._get_node_parameters_for_edit,
            "getNodeCommands": self._get_node_commands,
        }
        # subscribe/unsubscribe depend on who asks; they are answered in handle().
        self._subscriptions: dict[str, dict[str, TreeSubscription]] = {}
        # Who the request being answered comes from: handle() is synchronous, so
        # the command handlers can filter what they show by it without a parameter.
        self._viewer = ""

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The commands implemented, as getCapabilities lists them."""
        return (*self._commands, "subscribe", "unsubscribe")

    def handle(self, requester: str, request: Element) -> Answer:
        """Answer one request element from ``requester`` (a full or bare JID)."""
        command = local_name(request, NS_CONCENTRATORS) or "unknown"
        try:
            self.access.admit(requester, Role.READER, request)
        except AccessDenied:
            # The same answer whatever the request: strangers learn nothing.
            return failure_answer(command, Result.INSUFFICIENT_PRIVILEGES, "Access denied.")
        except HubdError as err:  # over a limit: the XEP has no code for it
            return Answer(response_element(command, Result.OTHER_ERROR), condition_for(err))
        self._viewer = requester
        try:
            return self._dispatch(command, requester, request)
        finally:
            self._viewer = ""

    def _dispatch(self, command: str, requester: str, request: Element) -> Answer:
        try:
            if command == "subscribe":
                return Answer(self._subscribe(requester, request))
            if command == "unsubscribe":
                return Answer(self._unsubscribe(requester, request))
        except _Failure as failure:
            return failure_answer(command, failure.result, failure.text)
        except BadRequest as err:
            return failure_answer(command, Result.FORM_ERROR, str(err))
        if self.children is not None and self.children.handles(command, request):
            return self.children.handle(requester, command, request)
        handler = self._commands.get(command)
        if handler is None:
            return failure_answer(command, Result.NOT_IMPLEMENTED, f"{command} is not implemented.")
        try:
            return Answer(handler(request))
        except _Failure as failure:
            return failure_answer(command, failure.result, failure.text)
        except BadRequest as err:
            return failure_answer(command, Result.FORM_ERROR, str(err))
        except HubdError as err:
            # Anything else from the hub still gets a result= code beside its
            # error, never slixmpp's bare undefined-condition for an exception.
            return Answer(response_element(command, Result.OTHER_ERROR), condition_for(err))

    # --- data-source events -------------------------------------------------

    def _subscribe(self, requester: str, request: Element) -> Element:
        source_id = require(request, "sourceId", "subscribe")
        if source_id not in {e.get("sourceId") for e in self._child_sources()}:
            self._source_nodes(source_id)  # NotFound for an unknown source (nor a remote)
        if request.get("getEventsSince") is not None:
            # The XEP: a concentrator that cannot replay history answers NotImplemented
            # and does not subscribe.  hubd keeps no history of its tree.
            raise _Failure(Result.NOT_IMPLEMENTED, "No event history is kept.")
        events = frozenset(name for name in TREE_EVENTS if _flag(request, name, default=True))
        self._subscriptions.setdefault(requester, {})[source_id] = TreeSubscription(
            source_id,
            events,
            parse_bool_attr(request, "parameters", "subscribe"),
            parse_bool_attr(request, "messages", "subscribe"),
        )
        return response_element("subscribe")

    def _unsubscribe(self, requester: str, request: Element) -> Element:
        source_id = require(request, "sourceId", "unsubscribe")
        mine = self._subscriptions.get(requester, {})
        current = mine.get(source_id)
        if current is not None:
            # Each event flag (default true) ends that kind of event.
            left = frozenset(e for e in current.events if not _flag(request, e, default=True))
            if left:
                mine[source_id] = TreeSubscription(
                    source_id, left, current.parameters, current.messages
                )
            else:
                del mine[source_id]
        if not mine:
            self._subscriptions.pop(requester, None)
        return response_element("unsubscribe")  # never an error, subscribed or not

    def forget(self, requester: str | None = None) -> None:
        """Drop the subscriptions of ``requester`` (presence gone), or everyone's."""
        if requester is None:
            self._subscriptions.clear()
        else:
            self._subscriptions.pop(requester, None)

    def subscribers_of(self, source_id: str) -> list[tuple[str, TreeSubscription]]:
        """Who subscribed to ``source_id``'s events (a remote's), with what they asked for."""
        subs = ((who, mine.get(source_id)) for who, mine in self._subscriptions.items())
        return [(who, sub) for who, sub in subs if sub is not None]

    def tree_event(self, kind: str, node: Node) -> list[tuple[str, Element]]:
        """The ``kind`` event about ``node`` for each subscriber that wants it and may see it."""
        out = []
        for requester, sources in self._subscriptions.items():
            if not self.access.allows(requester, Role.READER, node.id):
                continue
            for source_id in (ROOT_SOURCE, node.source):
                sub = sources.get(source_id)
                if sub is None or kind not in sub.events:
                    continue
                out.append((requester, _tree_element(kind, node, sub)))
                break  # one event per subscriber, however many sources match
        return out

    # --- data sources -------------------------------------------------------

    def _sources(self) -> dict[str, list[Node]]:
        """The data sources and their nodes, as the requester may see them."""
        nodes = self.access.visible(self._viewer, self.hub.nodes)
        sources: dict[str, list[Node]] = {ROOT_SOURCE: nodes}
        for node in nodes:
            sources.setdefault(node.source, []).append(node)
        return sources

    def _source_nodes(self, source_id: str) -> list[Node]:
        nodes = self._sources().get(source_id)
        if nodes is None:
            raise _Failure(Result.NOT_FOUND, f"No data source {source_id!r}.")
        return nodes

    def _data_source(self, parent: Element, source_id: str, nodes: Sequence[Node]) -> None:
        changed = max((n.last_changed for n in nodes), default=None)
        more = len(self._sources()) > 1 or bool(self._child_sources())
        attrs = {
            "sourceId": source_id,
            "name": "All devices" if source_id == ROOT_SOURCE else f"{source_id} devices",
            "hasChildren": xsd.format_boolean(source_id == ROOT_SOURCE and more),
        }
        if changed is not None:
            attrs["lastChanged"] = xsd.format_datetime(changed)
        SubElement(parent, qname(NS_CONCENTRATORS, "dataSource"), attrs)

    def _get_capabilities(self, request: Element) -> Element:
        response = response_element("getCapabilities")
        for command in self.capabilities:
            SubElement(response, qname(NS_CONCENTRATORS, "value")).text = command
        return response

    def _get_all_data_sources(self, request: Element) -> Element:
        response = response_element("getAllDataSources")
        for source_id, nodes in self._sources().items():
            self._data_source(response, source_id, nodes)
        response.extend(self._child_sources())
        return response

    def _child_sources(self) -> list[Element]:
        return [] if self.children is None else self.children.data_sources(self._viewer)

    def _get_root_data_sources(self, request: Element) -> Element:
        response = response_element("getRootDataSources")
        self._data_source(response, ROOT_SOURCE, self._sources()[ROOT_SOURCE])
        return response

    def _get_child_data_sources(self, request: Element) -> Element:
        source_id = require(request, "sourceId", "getChildDataSources")
        sources = self._sources()
        remote = {e.get("sourceId") for e in self._child_sources()}
        if source_id not in sources and source_id not in remote:
            raise _Failure(Result.NOT_FOUND, f"No data source {source_id!r}.")
        response = response_element("getChildDataSources")
        if source_id == ROOT_SOURCE:
            for child, nodes in sources.items():
                if child != ROOT_SOURCE:
                    self._data_source(response, child, nodes)
            response.extend(self._child_sources())
        return response

    # --- nodes ----------------------------------------------------------------

    def _find(self, ref: Element, where: str) -> tuple[Node, str]:
        node_id = require(ref, "nodeId", where)
        source_id = ref.get("sourceId") or ROOT_SOURCE
        node = self.hub.nodes.get(node_id)
        if node is not None and not self.access.allows(self._viewer, Role.READER, node_id):
            node = None  # not the requester's to see: answered like a missing node
        if node is None or source_id not in (ROOT_SOURCE, node.source):
            raise _Failure(Result.NOT_FOUND, f"No node {node_id!r} in {source_id!r}.")
        return node, source_id

    def _contains_node(self, request: Element) -> Element:
        try:
            self._find(request, "containsNode")
            found = True
        except _Failure:
            found = False
        response = response_element("containsNode")
        response.text = xsd.format_boolean(found)
        return response

    def _contains_nodes(self, request: Element) -> Element:
        response = response_element("containsNodes")
        for ref in _children(request, "node"):
            try:
                self._find(ref, "containsNodes")
                found = True
            except _Failure:
                found = False
            SubElement(response, qname(NS_CONCENTRATORS, "value")).text = xsd.format_boolean(found)
        return response

    def _get_node(self, request: Element) -> Element:
        node, source_id = self._find(request, "getNode")
        response = response_element("getNode", attrs=node_attributes(node, source_id))
        self._fill_node(response, node, request)
        return response

    def _fill_node(self, element: Element, node: Node, request: Element) -> None:
        if parse_bool_attr(request, "parameters", request.tag):
            add_parameters(element, node)
        if parse_bool_attr(request, "messages", request.tag):
            add_messages(element, node)

    def _node_list(self, name: str, request: Element, nodes: Iterable[tuple[Node, str]]) -> Element:
        response = response_element(name)
        for node, source_id in nodes:
            child = SubElement(
                response, qname(NS_CONCENTRATORS, "node"), node_attributes(node, source_id)
            )
            self._fill_node(child, node, request)
        return response

    def _get_nodes(self, request: Element) -> Element:
        found = [self._find(ref, "getNodes") for ref in _children(request, "node")]
        return self._node_list("getNodes", request, found)

    def _get_all_nodes(self, request: Element) -> Element:
        source_id = require(request, "sourceId", "getAllNodes")
        wanted = {
            (value.text or "").strip() for value in _children(request, "onlyIfDerivedFrom")
        } - {""}
        nodes = [
            (node, source_id)
            for node in self._source_nodes(source_id)
            if not wanted or wanted & {node.kind, BASE_CLASS}
        ]
        response = self._node_list("getAllNodes", request, nodes)
        reach = None if self.children is None else self.children.reach_element()
        if reach is not None and source_id == ROOT_SOURCE:
            response.append(reach)  # other hubs fetching this one find loops by it
        return response

    def _get_root_nodes(self, request: Element) -> Element:
        source_id = require(request, "sourceId", "getRootNodes")
        # Every source is flat: all its nodes are roots.
        nodes = [(node, source_id) for node in self._source_nodes(source_id)]
        return self._node_list("getRootNodes", request, nodes)

    def _get_child_nodes(self, request: Element) -> Element:
        self._find(request, "getChildNodes")
        return response_element("getChildNodes")  # devices have no child nodes

    def _get_ancestors(self, request: Element) -> Element:
        node, source_id = self._find(request, "getAncestors")
        return self._node_list("getAncestors", request, [(node, source_id)])

    def _get_node_inheritance(self, request: Element) -> Element:
        self._find(request, "getNodeInheritance")
        response = response_element("getNodeInheritance")
        classes = SubElement(response, qname(NS_CONCENTRATORS, "baseClasses"))
        SubElement(classes, qname(NS_CONCENTRATORS, "value")).text = BASE_CLASS
        return response

    def _get_node_parameters_for_edit(self, request: Element) -> Element:
        node, _ = self._find(request, "getNodeParametersForEdit")
        # Administration: the device's configuration (pins, ports, addresses) is the owner's.
        if not self.access.allows(self._viewer, Role.OWNER, node.id):
            raise _Failure(Result.INSUFFICIENT_PRIVILEGES, "Only an owner may see parameters.")
        response = response_element("getNodeParametersForEdit")
        form = SubElement(response, qname(NS_DATA_FORMS, "x"), {"type": "form"})
        SubElement(form, qname(NS_DATA_FORMS, "title")).text = node.name
        SubElement(
            form, qname(NS_DATA_FORMS, "instructions")
        ).text = "Read-only: edit the configuration file and reload hubd to change these."
        for key, label, value in node_parameters(node):
            field = SubElement(
                form,
                qname(NS_DATA_FORMS, "field"),
                {"var": key, "type": "text-single", "label": label},
            )
            SubElement(field, qname(NS_DATA_FORMS, "value")).text = lexical(value)
            SubElement(field, qname(NS_XDATA_DYNAMIC, "readOnly"))
        return response

    def _get_node_commands(self, request: Element) -> Element:
        self._find(request, "getNodeCommands")
        return response_element("getNodeCommands")  # no node commands yet


def _flag(request: Element, name: str, *, default: bool) -> bool:
    text = request.get(name)
    if text is None:
        return default
    try:
        return xsd.parse_boolean(text)
    except ValueError:
        raise BadRequest(f"{name}: not a boolean: {text!r}") from None


def _tree_element(kind: str, node: Node, sub: TreeSubscription) -> Element:
    ref = {"sourceId": sub.source_id, "nodeId": node.id}
    if kind in ("nodeAdded", "nodeUpdated"):
        element = Element(qname(NS_CONCENTRATORS, kind), node_attributes(node, sub.source_id))
        if sub.parameters:
            add_parameters(element, node)
        if sub.messages:
            add_messages(element, node)
        return element
    if kind == "nodeStatusChanged":
        element = Element(qname(NS_CONCENTRATORS, kind), {**ref, "state": STATE_NAMES[node.state]})
        add_messages(element, node)
        return element
    return Element(qname(NS_CONCENTRATORS, kind), ref)


def response_element(
    command: str, result: Result = Result.OK, attrs: dict[str, str] | None = None
) -> Element:
    tag = qname(NS_CONCENTRATORS, f"{command}Response")
    return Element(tag, {"result": result.value, **(attrs or {})})


def failure_answer(command: str, result: Result, text: str) -> Answer:
    kind, condition = _CONDITIONS[result]
    return Answer(response_element(command, result), ErrorCondition(kind, condition, text))


def _children(request: Element, name: str) -> list[Element]:
    return request.findall(qname(NS_CONCENTRATORS, name))
