"""Control (XEP-0325) of a remote hub's nodes: checked here, sent on, checked again there.

A ``set`` or ``getForm`` naming ``<node nodeId='light' sourceId='garage'/>``
is first checked against this hub's lists (the asker must be a controller of
``garage/light`` here: hub-wide, or through the remote's own ``access:``),
then sent to the remote under this hub's identity with the remote's own node
ids.  The remote enforces its grant to this hub, and what it answers comes
back as it said it: its ``forbidden`` (this hub only a reader there) stays
``forbidden``.  A remote that does not answer within its ``timeout`` gives
``remote-server-timeout``, never a hang.  One request names one remote's
nodes only: a set across hubs could not be all-or-nothing.  A provisioning
server's narrowing (XEP-0324 canControl parameters) holds as on this hub's own
nodes: a parameter left out is refused here, and left out of the remote's form.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.remote_settings import remote_node_key
from hubd.core.remote_source import RemoteSource, RemoteSources
from hubd.errors import AccessDenied, BadRequest, DriverUnavailable, NodeNotFound
from hubd.xmpp.control_xml import NS_CONTROL, NS_DATA_FORMS, parse_set
from hubd.xmpp.errors import ErrorCondition
from hubd.xmpp.sensordata_xml import qname

_LOGGER = logging.getLogger(__name__)
_AUDIT = logging.getLogger("hubd.audit")


@dataclass(frozen=True, slots=True)
class RemoteOutcome:
    """What the remote answered: its result's payload, or its error as it said it."""

    result: Element | None = None
    error: ErrorCondition | None = None


class RemoteControl:
    """Sends control requests on remote nodes to their hub, after this hub's own checks."""

    def __init__(self, xmpp: ClientXMPP, sources: RemoteSources, access: AccessPolicy) -> None:
        self.xmpp = xmpp
        self.sources = sources
        self.access = access
        #: Told of a remote that did not answer in time (it goes offline until it answers).
        self.on_silent: Callable[[RemoteSource, str], None] | None = None

    def names_remote(self, element: Element) -> bool:
        """True when ``element`` (a ``set`` or ``getForm``) names a remote's node."""
        refs = element.findall(qname(NS_CONTROL, "node"))
        return any(ref.get("sourceId") in self.sources for ref in refs)

    def check(self, element: Element, requester: str) -> tuple[RemoteSource, Element]:
        """The remote to ask and the request for it; raises what this hub refuses."""
        refs = element.findall(qname(NS_CONTROL, "node"))
        source_ids = {ref.get("sourceId") for ref in refs}
        if len(source_ids) != 1:
            raise BadRequest("a control request names the nodes of one hub only")
        source = self.sources.get(source_ids.pop() or "")
        assert source is not None  # names_remote() said so
        node_ids = list(dict.fromkeys(ref.get("nodeId", "") for ref in refs))
        for node_id in node_ids:
            key = remote_node_key(source.id, node_id)
            # A node the requester may not read here is answered like a missing one.
            if source.node(node_id) is None or not self.access.allows(requester, Role.READER, key):
                raise NodeNotFound(f"{node_id} in {source.id}")
            if not self.access.allows(requester, Role.CONTROLLER, key):
                raise AccessDenied(f"Access denied: you may not control {key}.")
        if element.tag == qname(NS_CONTROL, "set"):
            for name, _ in parse_set(element).parameters:
                for node_id in node_ids:
                    key = remote_node_key(source.id, node_id)
                    self.access.check_parameter(requester, key, name)
        if not source.online:
            raise DriverUnavailable(f"{source.id}: {source.reason}")
        forwarded = copy.deepcopy(element)
        for ref in forwarded.findall(qname(NS_CONTROL, "node")):
            del ref.attrib["sourceId"]  # the remote's own nodes, in its own sources
            ref.attrib.pop("cacheType", None)
        return source, forwarded

    async def ask(
        self, source: RemoteSource, request: Element, kind: str, requester: str, what: str
    ) -> RemoteOutcome:
        """Send ``request`` in an IQ of ``kind``; the remote's answer, or its timeout.

        ``what`` describes the request for the audit log (``garage: light.state = 'true'``).
        """
        iq: Any = (self.xmpp.make_iq_set if kind == "set" else self.xmpp.make_iq_get)(
            ito=JID(source.jid)
        )
        iq.xml.append(request)
        try:
            answer = await iq.send(timeout=source.timeout)
        except IqTimeout:
            audit_refused(requester, what, "no answer from the remote hub")
            silent = f"no answer within {source.timeout:g} s"
            if self.on_silent is not None:
                self.on_silent(source, silent)
            text = f"{source.id}: {silent}"
            return RemoteOutcome(error=ErrorCondition("wait", "remote-server-timeout", text))
        except IqError as err:
            error = err.iq["error"]
            condition = error["condition"] or "undefined-condition"
            said = error["text"] or condition
            audit_refused(requester, what, f"the remote hub refused: {condition}")
            text = f"{source.id}: {said}"
            return RemoteOutcome(error=ErrorCondition(error["type"] or "cancel", condition, text))
        if request.tag == qname(NS_CONTROL, "set"):
            _AUDIT.info("control by %s: %s done at the remote hub", requester, what)
        result = next(iter(answer.xml), None)
        if result is not None and request.tag == qname(NS_CONTROL, "getForm"):
            keys = [
                remote_node_key(source.id, ref.get("nodeId", ""))
                for ref in request.findall(qname(NS_CONTROL, "node"))
            ]
            narrow_form(
                result, [self.access.fields_for(requester, k, Role.CONTROLLER) for k in keys]
            )
        return RemoteOutcome(result=result)

    def tell(self, source: RemoteSource, request: Element, requester: str, what: str) -> None:
        """Send a ``set`` in a message (no answer comes back, as the XEP says)."""
        message = self.xmpp.make_message(mto=JID(source.jid))
        message.xml.append(request)
        message.send()
        _AUDIT.info("control by %s: %s sent on to the remote hub", requester, what)


def narrow_form(form: Element, allowed: list[frozenset[str] | None]) -> None:
    """Leave out of a remote's control form the parameters a provisioning server left out.

    ``allowed`` holds each named node's parameters (None: all); a field stays
    when every node allows it, as a multi-node set must be valid for each.
    """
    limits = [names for names in allowed if names is not None]
    if not limits or form.tag != qname(NS_DATA_FORMS, "x"):
        return
    for field in form.findall(qname(NS_DATA_FORMS, "field")):
        var = field.get("var")
        if field.get("type") in ("hidden", "fixed") or var is None:
            continue  # the form's own fields (FORM_TYPE...), not parameters
        if not all(var in names for names in limits):
            form.remove(field)
