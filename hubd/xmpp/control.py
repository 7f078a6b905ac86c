"""XEP-0325 control: ``set`` (in an IQ or a message) and ``getForm``.

Every parameter is validated against every named node before anything is
done (the XEP's rule for multi-node sets); only then are the writes carried
out, in document order, through the hub (which serialises writes per node
and audits them).  A ``set`` in a message gets no answer, as the XEP says.

Addressing: hubd is a concentrator, so a ``set`` names its node(s).  Clients
that cannot (Smack's IoT package addresses a single Thing) may qualify the
parameter instead, ``porch-light.state``, or use a bare name that exactly one
node has as a writable field.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import CoroutineCallback

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType, Value
from hubd.errors import (
    AccessDenied,
    BadRequest,
    ControlError,
    ControlNotSupported,
    DriverUnavailable,
    HubdError,
    NodeNotFound,
    UnknownParameter,
)
from hubd.xmpp.control_xml import (
    NS_CONTROL,
    ControlRequest,
    ResponseCode,
    build_control_form,
    build_param_error,
    build_refused_set_response,
    build_set_response,
    parse_get_form,
    parse_set,
)
from hubd.xmpp.errors import ErrorCondition, condition_for
from hubd.xmpp.sensordata_xml import NodeRef
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result

if TYPE_CHECKING:  # imported where remotes: is configured (memory of a hub without)
    from hubd.xmpp.remote_control import RemoteControl

_LOGGER = logging.getLogger(__name__)

FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")

Write = tuple[str, str, Value]  # node id, field, validated value


class ControlService:
    """Carries out XEP-0325 control requests on the hub's nodes."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        hub: Hub,
        access: AccessPolicy,
        remote: RemoteControl | None = None,
    ) -> None:
        self.xmpp = xmpp
        self.hub = hub
        self.access = access
        self.remote = remote
        xmpp.register_handler(
            CoroutineCallback(
                "iot control iq",
                PayloadMatcher("iq", NS_CONTROL, ("set", "getForm"), ("get", "set")),
                self._on_iq,
            )
        )
        xmpp.register_handler(
            CoroutineCallback(
                "iot control message",
                PayloadMatcher("message", NS_CONTROL, ("set",)),
                self._on_message,
            )
        )
        xmpp.plugin["xep_0030"].add_feature(NS_CONTROL)

    async def _on_iq(self, iq: Any) -> None:
        requester = str(iq["from"])
        element = payload(iq, "{" + NS_CONTROL + "}")
        assert element is not None
        is_set = not element.tag.endswith("}getForm")
        await self.access.ensure(requester)  # XEP-0324: ask about unknown requesters
        try:
            try:
                self.access.admit(requester, Role.CONTROLLER, element)
                if self.remote is not None and self.remote.names_remote(element):
                    await self._forward(iq, requester, element, self.remote)
                    return
                if not is_set:
                    send_result(iq, self._form(parse_get_form(element), requester))
                    return
                writes = self.validate(parse_set(element), requester)
            except HubdError as err:
                if is_set:  # the hub audits the writes it attempts; these never got there
                    audit_refused(requester, describe_set(element), err)
                raise
            await self.execute(writes, requester)
        except HubdError as err:
            field = err.field if isinstance(err, ControlError) else None
            inside = [build_param_error(field, str(err))] if field else []
            condition = condition_for(err)
            # The refusal also in XEP-0325 v0.2's form, for slixmpp's stock client;
            # a getForm has no such form (v0.2 had no getForm).
            beside = _refused_set_response(err, condition.text) if is_set else None
            send_error(iq, condition, inside=inside, beside=beside)
        else:
            send_result(iq, build_set_response())

    async def _on_message(self, message: Any) -> None:
        requester = str(message["from"])
        element = payload(message, "{" + NS_CONTROL + "}")
        assert element is not None
        await self.access.ensure(requester)
        try:
            self.access.admit(requester, Role.CONTROLLER, element)
            if self.remote is not None and self.remote.names_remote(element):
                source, forwarded = self.remote.check(element, requester)
                what = f"{source.id}: {describe_set(forwarded)}"
                self.remote.tell(source, forwarded, requester, what)
                return
            writes = self.validate(parse_set(element), requester)
        except HubdError as err:
            audit_refused(requester, describe_set(element), err)
            return
        try:
            await self.execute(writes, requester)
        except HubdError as err:
            # No answer goes back for a set in a message; the audit log has it.
            _LOGGER.info("control message from %s not carried out: %s", requester, err)

    async def _forward(
        self, iq: Any, requester: str, element: Element, remote: RemoteControl
    ) -> None:
        """A request on a remote's nodes: checked here, then answered as the remote answers."""
        source, forwarded = remote.check(element, requester)  # raises what this hub refuses
        what = f"{source.id}: {describe_set(forwarded)}"
        outcome = await remote.ask(source, forwarded, iq["type"], requester, what)
        if outcome.error is not None:
            send_error(iq, outcome.error)
        else:
            send_result(iq, outcome.result)

    def validate(self, request: ControlRequest, requester: str) -> list[Write]:
        """Check every parameter against every node; return the writes, or raise.

        A node ``requester`` may not read is answered like an unknown node;
        one it may read but not control is ``forbidden``.
        """
        if not request.parameters:
            raise BadRequest("the set names no parameter")
        targets = self._targets(request, requester)
        for node_id in dict.fromkeys(t[0] for t in targets):
            if not self.access.allows(requester, Role.CONTROLLER, node_id):
                raise AccessDenied(f"Access denied: you may not control {node_id}.")
        writes: list[Write] = []
        for node_id, name, raw in targets:
            try:
                self._check_narrowed(requester, node_id, name)
                value = self.hub.validate(node_id, name, raw)
            except ControlError as err:
                err.node_id = err.node_id or node_id  # for the v0.2 refusal's <node/>
                raise
            node = self.hub.node(node_id)
            if not node.online:
                raise DriverUnavailable(node.state_message or f"{node_id} is {node.state.value}")
            writes.append((node_id, name, value))
        return writes

    def _check_narrowed(self, requester: str, node_id: str, name: str) -> None:
        """Refuse a parameter a provisioning server left out (XEP-0324 canControl)."""
        self.access.check_parameter(requester, node_id, name)

    def _settable(self, requester: str, node_id: str, spec: FieldSpec) -> bool:
        allowed = self.access.fields_for(requester, node_id, Role.CONTROLLER)
        return spec.writable and (allowed is None or spec.name in allowed)

    def _targets(self, request: ControlRequest, requester: str) -> list[tuple[str, str, str]]:
        if request.nodes:
            node_ids = self._known(request.nodes, requester)
            return [(n, name, raw) for n in node_ids for name, raw in request.parameters]
        return [(*self._locate(name, requester), raw) for name, raw in request.parameters]

    def _known(self, refs: Sequence[NodeRef], requester: str) -> list[str]:
        visible = {n.id for n in self.access.visible(requester, self.hub.nodes)}
        return _known(self.hub, refs, visible)

    def _locate(self, name: str, requester: str) -> tuple[str, str]:
        """Find the node of an unaddressed parameter (``node.field`` or a unique field)."""
        visible = {n.id: n for n in self.access.visible(requester, self.hub.nodes)}
        for sep in (".", "/"):
            node_id, found, field = name.partition(sep)
            if found and node_id in visible:
                return node_id, field
        mine = self.access.visible(requester, visible, Role.CONTROLLER)
        owners = [
            n.id for n in mine if (s := n.spec.get(name)) and self._settable(requester, n.id, s)
        ]
        if len(owners) == 1:
            return owners[0], name
        if not owners:
            raise UnknownParameter(f"no node has a writable {name!r}", field=name)
        raise BadRequest(
            f"{name!r} is a parameter of {', '.join(owners)}: name the node with "
            f"<node nodeId='...'/> or write the parameter as NODE.{name}"
        )

    async def execute(self, writes: Sequence[Write], actor: str) -> None:
        """Carry out validated writes in order."""
        for node_id, name, value in writes:
            await self.hub.write(node_id, name, value, actor=actor)

    def _form(self, refs: Sequence[NodeRef], requester: str) -> Any:
        controllable = self.access.visible(requester, self.hub.nodes, Role.CONTROLLER)
        node_ids = self._known(refs, requester) if refs else [n.id for n in controllable]
        for node_id in node_ids:
            if not self.access.allows(requester, Role.CONTROLLER, node_id):
                raise AccessDenied(f"Access denied: you may not control {node_id}.")
        if not node_ids:
            raise NodeNotFound("the hub has no nodes")
        nodes = [self.hub.node(n) for n in node_ids]
        common = _common_parameters(
            [[s for s in n.spec.writable if self._settable(requester, n.id, s)] for n in nodes]
        )
        if not common:
            if len(nodes) == 1:
                raise ControlNotSupported(f"{nodes[0].id} has no control parameters")
            raise ControlNotSupported("Cannot merge control forms from different nodes.")
        title = nodes[0].name if len(nodes) == 1 else f"{len(nodes)} devices"
        current = nodes[0].cache if len(nodes) == 1 else {}
        return build_control_form(title, common, current)


def _response_code(error: HubdError) -> ResponseCode:
    if isinstance(error, NodeNotFound | UnknownParameter):
        return "NotFound"
    if isinstance(error, AccessDenied):
        return "InsufficientPrivileges"
    if isinstance(error, ControlNotSupported):
        return "NotImplemented"
    return "OtherError"  # bad values, limits, offline hardware, failed writes


def _refused_set_response(error: HubdError, text: str) -> Element:
    # Only nodes the requester may see get here by name (others are NodeNotFound
    # for the id it sent, or AccessDenied before any lookup): naming it leaks nothing.
    node_id = error.node_id if isinstance(error, NodeNotFound | ControlError) else None
    field = error.field if isinstance(error, ControlError) else None
    return build_refused_set_response(_response_code(error), text, node_id=node_id, parameter=field)


def describe_set(element: Element) -> str:
    """``porch-light.state = 'true'``: what a ``set`` asked for, short, for the audit log."""
    ns = "{" + NS_CONTROL + "}"
    nodes = [n.get("nodeId", "?")[:64] for n in element.findall(ns + "node")][:5]
    params = [
        f"{child.get('name', '?')[:64]} = {child.get('value', '')[:64]!r}"
        for child in element
        if child.get("name") is not None
    ][:5]
    target = ",".join(nodes) + "." if nodes else ""
    return target + (", ".join(params) or "(no parameter)")


def _known(hub: Hub, refs: Sequence[NodeRef], visible: set[str]) -> list[str]:
    # Nodes the requester may not see are "unknown", in the same words as missing ones.
    unknown = sorted({ref.node_id for ref in refs} - (set(hub.nodes) & visible))
    if unknown:
        raise NodeNotFound(", ".join(unknown))
    return list(dict.fromkeys(ref.node_id for ref in refs))


def _common_parameters(per_node: Sequence[Sequence[FieldSpec]]) -> list[FieldSpec]:
    """Parameters every node has, with the same type (the first node's order)."""
    first, *others = per_node
    kinds: list[dict[str, FieldType]] = [{s.name: s.type for s in specs} for specs in others]
    return [s for s in first if all(k.get(s.name) is s.type for k in kinds)]
