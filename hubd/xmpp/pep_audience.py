"""PEP's audience follows the access lists: presence the lists no longer back is withdrawn.

A PEP node with ``pubsub#access_model=presence`` is readable by everyone
whose presence subscription to the hub was approved.  The hub approves the
people in the access lists (``PresenceRequests``), and ``pubsub: {service:
pep}`` is refused with anything that approves more (``ask_owners``,
``provisioning``, ``discovery``).  What the server remembers outlives the
lists, though: someone a reload (or an edit before a restart) took out of
them would keep reading the items.  So with PEP, whenever the roster arrives
or changes and on every reload, each contact that sees the hub's presence
(``from`` or ``both``) but may read nothing any more gets ``unsubscribed``.
"""

from __future__ import annotations

import logging
from typing import Any

from slixmpp import ClientXMPP

from hubd.core.access import AccessPolicy, Role

_LOGGER = logging.getLogger(__name__)


class PepAudience:
    """Withdraws the hub's presence from contacts the access lists no longer name."""

    def __init__(self, xmpp: ClientXMPP, access: AccessPolicy) -> None:
        self.xmpp = xmpp
        self.access = access
        xmpp.add_event_handler("roster_update", self._on_roster)

    def _on_roster(self, _iq: Any) -> None:
        self.check()

    def check(self) -> list[str]:
        """Send ``unsubscribed`` to each such contact; return their bare JIDs."""
        roster = self.xmpp.client_roster
        withdrawn: list[str] = []
        for jid in list(roster):
            bare = str(jid).lower()
            if roster[jid]["subscription"] not in ("from", "both"):
                continue
            if bare == self.xmpp.boundjid.bare or self.access.allows_any(bare, Role.READER):
                continue
            roster[jid].unauthorize()
            withdrawn.append(bare)
            _LOGGER.info(
                "pubsub: withdrew the presence subscription of %s (no longer in the access "
                "lists; PEP items follow presence)",
                bare,
            )
        return withdrawn
