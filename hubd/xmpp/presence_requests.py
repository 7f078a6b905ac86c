"""Presence subscription requests: who may see that the hub is online.

Everyone in the access lists is approved at once, and so is anyone the
XEP-0324 provisioning server calls a friend.  Everyone else is refused, or,
with ``access.ask_owners: true``, the owners are asked by chat: each owner
listed by bare JID gets one message naming the requester, and answers with
the owner-only commands ``allow <jid>`` or ``deny <jid>``.  Approving a
presence subscription shows the hub's presence and status line; it grants no
access to any device (that stays the config file's business).

Abuse bounds: one question per requester while it waits, at most
:data:`MAX_PENDING` waiting (any more are refused at once), and the owners'
answers are remembered (bounded) so that a refused requester asking again is
refused without asking the owners again.  The server re-delivers requests
nobody answered after a restart, so the waiting list needs no storage.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slixmpp import JID, ClientXMPP

from hubd.core.access import AccessPolicy, Role
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.commands import ChatCommands

if TYPE_CHECKING:  # imported by the client when provisioning is configured
    from hubd.xmpp.provisioning import ProvisioningService

_LOGGER = logging.getLogger(__name__)

MAX_PENDING = 16
REMEMBERED = 256


class PresenceRequests:
    """Decides presence subscription requests; asks the owners when configured to."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        access: AccessPolicy,
        commands: ChatCommands,
        provisioning: ProvisioningService | None = None,
    ) -> None:
        self.xmpp = xmpp
        self.access = access
        self.provisioning = provisioning
        #: Requesters waiting for an owner's answer, oldest first.
        self.pending: OrderedDict[str, None] = OrderedDict()
        #: More friends than the lists name (the Thing registry): bare JID -> approve?
        self.friends: list[Callable[[str], bool]] = []
        # The owners' answers: bare JID -> allowed (bounded, oldest forgotten).
        self._answers: OrderedDict[str, bool] = OrderedDict()
        xmpp.add_event_handler("presence_subscribe", self._on_subscribe)
        commands.register(
            Command(
                name="allow",
                usage="allow <jid>",
                summary="let someone who asked see the hub online (no device access)",
                role=Role.OWNER,
                run=self._allow,
                controls=True,
            )
        )
        commands.register(
            Command(
                name="deny",
                usage="deny <jid>",
                summary="refuse someone who asked to see the hub online",
                role=Role.OWNER,
                run=self._deny,
                controls=True,
            )
        )

    async def _on_subscribe(self, presence: Any) -> None:
        requester = presence["from"].bare.lower()
        friend = self.access.allows_any(requester, Role.READER) or any(
            is_friend(requester) for is_friend in self.friends
        )
        if not friend and self.provisioning is not None:
            # XEP-0324: the provisioning server decides about everyone else.
            friend = await self.provisioning.is_friend(requester)
        if friend:
            self._approve(requester, "in the access lists, or a provisioning or registry friend")
            return
        if not self.access.ask_owners:
            self._refuse(requester, "not in access lists")
            return
        answer = self._answers.get(requester)
        if answer is not None:
            # The owners answered this requester before: the same answer, no new question.
            if answer:
                self._approve(requester, "allowed by an owner before")
            else:
                self._refuse(requester, "denied by an owner before")
            return
        if requester in self.pending:
            return  # asked already: the owners' answer decides
        owners = self.access.owner_jids()
        if not owners:
            self._refuse(requester, "no owner to ask: access.owners lists no bare JID")
            return
        if len(self.pending) >= MAX_PENDING:
            self._refuse(requester, f"{MAX_PENDING} requests already wait for the owners")
            return
        self.pending[requester] = None
        text = (
            f"{requester} asks to see when the hub is online (a presence subscription; "
            f"it gives no access to devices). Reply: allow {requester}, or deny {requester}."
        )
        for owner in owners:
            self.xmpp.send_message(mto=JID(owner), mbody=text, mtype="chat")
        _LOGGER.info("asked the owners about the presence subscription of %s", requester)

    def _approve(self, requester: str, why: str) -> None:
        self.xmpp.client_roster[requester].authorize()
        _LOGGER.info("approved the presence subscription of %s (%s)", requester, why)

    def _refuse(self, requester: str, why: str) -> None:
        self.xmpp.client_roster[requester].unauthorize()
        _LOGGER.info("refused the presence subscription of %s (%s)", requester, why)

    async def _allow(self, call: Invocation) -> str:
        requester = self._waiting(call)
        self._remember(requester, allowed=True)
        self._approve(requester, f"allowed by {JID(call.sender).bare}")
        return (
            f"{requester} now sees when the hub is online. To let them read devices, "
            "add them to access.readers in the config."
        )

    async def _deny(self, call: Invocation) -> str:
        requester = self._waiting(call)
        self._remember(requester, allowed=False)
        self._refuse(requester, f"denied by {JID(call.sender).bare}")
        return f"Refused: {requester} does not see the hub."

    def _waiting(self, call: Invocation) -> str:
        """The waiting requester the owner named; raises with the list when none matches."""
        waiting = ", ".join(self.pending) or "none"
        if not call.args:
            raise CommandError(f"{call.word} whom? Waiting: {waiting}.")
        requester = call.args[0].lower().split("/", 1)[0]
        if requester not in self.pending:
            raise CommandError(f"{requester} is not waiting. Waiting: {waiting}.")
        del self.pending[requester]
        return requester

    def _remember(self, requester: str, *, allowed: bool) -> None:
        self._answers[requester] = allowed
        self._answers.move_to_end(requester)
        while len(self._answers) > REMEMBERED:
            self._answers.popitem(last=False)
