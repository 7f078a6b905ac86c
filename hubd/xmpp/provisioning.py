"""XEP-0324 provisioning: ask a provisioning server about requesters the access lists do not name.

With ``access.provisioning: JID`` the hub delegates its trust decisions for
everyone outside the lists (digest §5): ``canControl`` / ``canRead`` decide
whether an unknown requester is a controller, a reader or a stranger, and
``isFriend`` whether its presence subscription is accepted.  The hub asks
once per requester, about everything (``canRead all='true'``, ``canControl``
without nodes), and keeps the node, field and parameter lists the answers
narrow it to (:class:`~hubd.core.access.Provisioned`): every interface then applies
them through the access policy.  A ``<node nodeId sourceId>`` of an answer is
kept under the name the access checks use (:func:`node_keys`): a remote hub's
node as ``garage/door``, the hub's own by its id.  Answers are cached (bounded) until the server
sends ``clearCache``; ``friend`` and ``unfriend`` messages are honoured from
that server only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Iterable
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.core.access import AccessPolicy, Provisioned
from hubd.core.remote_settings import BUS_SOURCES, ROOT_SOURCE, remote_node_key
from hubd.xmpp.errors import ErrorCondition
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result

_LOGGER = logging.getLogger(__name__)

NS_PROVISIONING = "urn:xmpp:iot:provisioning"
ASK_TIMEOUT = 10.0
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")


class ProvisioningService:
    """The hub's side of XEP-0324: asks, caches, obeys the one trusted server."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        access: AccessPolicy,
        server: str,
        remote_ids: Container[str] = (),
        own_sources: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.xmpp = xmpp
        self.access = access
        self.server = JID(server)
        #: The data source ids of the remote hubs (``remotes:``): their nodes are theirs.
        self.remote_ids = remote_ids
        #: The data sources of this hub's own nodes now (their buses), asked at each answer.
        self.own_sources = own_sources
        access.resolver = self.resolve
        xmpp.register_handler(
            Callback(
                "iot provisioning clearCache",
                PayloadMatcher("iq", NS_PROVISIONING, ("clearCache",), ("set",)),
                self._on_clear_cache,
            )
        )
        xmpp.register_handler(
            Callback(
                "iot provisioning friend",
                MatchXPath("{jabber:client}message"),
                self._on_message,
            )
        )

    def _trusted(self, sender: JID) -> bool:
        return sender.bare == self.server.bare

    async def resolve(self, bare: str) -> Provisioned | None:
        """What the server allows ``bare``; None when it did not answer."""
        try:
            control = await self._ask("canControl", bare)
            read = await self._ask("canRead", bare, all="true")
        except (IqTimeout, TimeoutError):
            _LOGGER.warning("provisioning server %s did not answer about %s", self.server, bare)
            return None
        own = {ROOT_SOURCE, *BUS_SOURCES, *self.own_sources()}
        answer = Provisioned(
            reads=read is not None,
            controls=control is not None,
            read_nodes=node_keys(read, self.remote_ids, own),
            read_fields=_listed(read, "field", "name"),
            control_nodes=node_keys(control, self.remote_ids, own),
            parameters=_listed(control, "parameter", "name"),
        )
        narrowed = answer.hub_wide() != answer.best() or _narrows_fields(answer)
        _LOGGER.info(
            "provisioning server: %s is %s%s",
            bare,
            answer.best().name.lower(),
            " on some devices or fields only" if narrowed else "",
        )
        return answer

    async def is_friend(self, bare: str) -> bool:
        """Whether the server accepts ``bare`` as a friend (presence subscription)."""
        try:
            return await self._ask("isFriend", bare) is not None
        except (IqTimeout, TimeoutError):
            _LOGGER.warning("provisioning server %s did not answer isFriend", self.server)
            return False

    async def _ask(self, question: str, bare: str, **attrs: str) -> Element | None:
        """The server's ``…Response`` when it says yes; None when it says no or refuses."""
        iq = self.xmpp.make_iq_get(ito=self.server)
        iq.xml.append(Element(f"{{{NS_PROVISIONING}}}{question}", {"jid": bare, **attrs}))
        sender: Any = iq  # slixmpp's Iq.send is untyped
        try:
            answer = await sender.send(timeout=ASK_TIMEOUT)
        except IqError as err:
            _LOGGER.info(
                "provisioning server refused %s about %s: %s", question, bare, err.condition
            )
            return None
        response: Element | None = answer.xml.find(f"{{{NS_PROVISIONING}}}{question}Response")
        if response is None or response.get("result", "").lower() not in ("true", "1"):
            return None
        return response

    def _on_clear_cache(self, iq: Any) -> None:
        if not self._trusted(iq["from"]):
            send_error(iq, FORBIDDEN)
            return
        self.access.clear_provisioned()
        _LOGGER.info("provisioning server cleared the cache")
        send_result(iq, Element(f"{{{NS_PROVISIONING}}}clearCacheResponse"))

    def _on_message(self, message: Any) -> None:
        element = payload(message, "{" + NS_PROVISIONING + "}")
        if element is None or not self._trusted(message["from"]):
            return  # "silently ignored" from anyone else (XEP-0324 §3)
        jid = element.get("jid", "")
        if not jid:
            return
        if element.tag.endswith("}unfriend"):
            self.access.forget_provisioned(jid)
            self.xmpp.send_presence(pto=JID(jid), ptype="unsubscribed")
            _LOGGER.info("provisioning server: unfriend %s", jid)
        elif element.tag.endswith("}friend"):
            # A recommendation: the next request of that JID asks again.
            self.access.forget_provisioned(jid)
            _LOGGER.info("provisioning server: friend %s", jid)


def _listed(response: Element | None, tag: str, attribute: str) -> frozenset[str] | None:
    """The names a response narrows to (``<node nodeId>``, ``<field name>``…); None: all."""
    if response is None:
        return None
    names = [child.get(attribute, "") for child in response.iter(f"{{{NS_PROVISIONING}}}{tag}")]
    return frozenset(names) if names else None


def node_keys(
    response: Element | None, remote_ids: Container[str], own_sources: Container[str]
) -> frozenset[str] | None:
    """The nodes a response narrows to, as the access checks name them; None: all.

    XEP-0324 names a node by ``nodeId``, ``sourceId`` and ``cacheType``.  A
    ``sourceId`` that is a remote hub's id names that remote's node
    (``garage/door``); none, or one of ``own_sources`` (this hub's), names this
    hub's own node (node ids are unique within one hub, whatever their source,
    as in readouts).  Any other source is no source of this hub: its nodes
    match nothing here.  So ``<node nodeId='door'/>`` never opens ``garage/door``.
    """
    if response is None:
        return None
    keys = []
    has_nodes = False
    for node in response.iter(f"{{{NS_PROVISIONING}}}node"):
        has_nodes = True
        node_id, source_id = node.get("nodeId", ""), node.get("sourceId", "")
        if not node_id:
            continue  # names no node: opens none (only no <node> at all opens all)
        if source_id in remote_ids or (source_id and source_id not in own_sources):
            keys.append(remote_node_key(source_id, node_id))
        else:
            keys.append(node_id)
    return frozenset(keys) if has_nodes else None


def _narrows_fields(answer: Provisioned) -> bool:
    return answer.read_fields is not None or answer.parameters is not None
