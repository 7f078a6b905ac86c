"""XEP-0324 provisioning: ask a provisioning server about requesters the access lists do not name.

With ``access.provisioning: JID`` the hub delegates its trust decisions for
everyone outside the lists (digest §5): ``canControl`` / ``canRead`` decide
whether an unknown requester is a controller, a reader or a stranger, and
``isFriend`` whether its presence subscription is accepted.  Answers are
cached (bounded) until the server sends ``clearCache``; ``friend`` and
``unfriend`` messages are honoured from that server only.  The server's
node and field restrictions are not applied: an answer grants or refuses the
role hub-wide (documented in the README).
"""

from __future__ import annotations

import logging
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.access import AccessPolicy, Role
from hubd.xmpp.errors import ErrorCondition
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result

_LOGGER = logging.getLogger(__name__)

NS_PROVISIONING = "urn:xmpp:iot:provisioning"
ASK_TIMEOUT = 10.0
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")


class ProvisioningService:
    """The hub's side of XEP-0324: asks, caches, obeys the one trusted server."""

    def __init__(self, xmpp: ClientXMPP, access: AccessPolicy, server: str) -> None:
        self.xmpp = xmpp
        self.access = access
        self.server = JID(server)
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

    async def resolve(self, bare: str) -> Role | None:
        """The role the server gives ``bare``; None when it did not answer."""
        try:
            if await self._ask("canControl", bare):
                role = Role.CONTROLLER
            elif await self._ask("canRead", bare, momentary="true"):
                role = Role.READER
            else:
                role = Role.STRANGER
        except (IqTimeout, TimeoutError):
            _LOGGER.warning("provisioning server %s did not answer about %s", self.server, bare)
            return None
        _LOGGER.info("provisioning server: %s is %s", bare, role.name.lower())
        return role

    async def is_friend(self, bare: str) -> bool:
        """Whether the server accepts ``bare`` as a friend (presence subscription)."""
        try:
            return await self._ask("isFriend", bare)
        except (IqTimeout, TimeoutError):
            _LOGGER.warning("provisioning server %s did not answer isFriend", self.server)
            return False

    async def _ask(self, question: str, bare: str, **attrs: str) -> bool:
        iq = self.xmpp.make_iq_get(ito=self.server)
        iq.xml.append(Element(f"{{{NS_PROVISIONING}}}{question}", {"jid": bare, **attrs}))
        sender: Any = iq  # slixmpp's Iq.send is untyped
        try:
            answer = await sender.send(timeout=ASK_TIMEOUT)
        except IqError as err:
            _LOGGER.info("provisioning server refused %s about %s: %s", question, bare, err)
            return False
        response = answer.xml.find(f"{{{NS_PROVISIONING}}}{question}Response")
        return response is not None and response.get("result") == "true"

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
