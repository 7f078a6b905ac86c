"""With OMEMO on, the hub asks the people it lets see it for their presence in return.

Some clients publish their OMEMO keys for their contacts only: PEP's default
access model is ``presence``, and Profanity 0.13 asks for ``open`` only when
the server's domain announces ``publish-options`` (Prosody 0.12 announces it
on the account).  The hub can fetch such a person's keys, and so decrypt what
they send, only with a subscription to that person's presence.  So when a
listed person asks to see the hub, the hub asks for theirs too (once: not
while a request is pending or granted).  Conversations pre-approves contacts
its user added; Profanity shows the request (``/sub allow hub@...``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slixmpp import ClientXMPP

_LOGGER = logging.getLogger(__name__)


class SubscribeBack:
    """Ask listed people who subscribe to the hub for a subscription to them."""

    def __init__(self, xmpp: ClientXMPP, is_listed: Callable[[str], bool]) -> None:
        self.xmpp = xmpp
        self.is_listed = is_listed
        xmpp.add_event_handler("presence_subscribe", self._on_subscribe)

    def _on_subscribe(self, presence: Any) -> None:
        bare = presence["from"].bare.lower()
        if not self.is_listed(bare):
            return  # strangers: nothing of theirs is wanted (and no key material fetched)
        item = self.xmpp.client_roster[bare]
        if item["to"] or item["pending_out"]:
            return
        item.subscribe()
        _LOGGER.info("OMEMO: asked %s for a presence subscription (to read their keys)", bare)
