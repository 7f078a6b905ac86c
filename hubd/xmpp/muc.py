"""Group chat (XEP-0045): the hub joins the rooms of ``rooms:`` and answers commands there.

A line is for the hub when it starts with the hub's nickname (``hub: read
porch-light``, ``hub, list``).  Who typed it is decided by the occupant's
*real* JID, which the room shows only when it is non-anonymous or the hub is a
moderator (owner of a room it created); without it nobody there can be
trusted, so nothing is carried out and the room is told why (once in a
while).  The real JID then goes through the same access lists, the same
:class:`~hubd.people.commands.ChatCommands` and the same audited hub calls as a
one-to-one chat; strangers get one short, rate-limited refusal.

Lines replayed from the room's history (they carry a ``delay``) are never
commands: joining a room must not re-run what was typed there yesterday.
Private messages through the room are ignored; people chat with the hub
directly.  A room the hub creates is made an instant room (XEP-0045 §10.1.2)
so others can enter it.

:meth:`MucService.post` is for the hub's own news in a room (events of the
devices a room lists under ``devices:``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout, PresenceError

from hubd.core.access import AccessPolicy, Role
from hubd.core.config import RoomSettings
from hubd.people.command import SharedFile
from hubd.people.commands import NOT_AUTHORISED, ChatCommands
from hubd.xmpp.chat import StrangerGate, delay_stamp
from hubd.xmpp.oob import link_message

_LOGGER = logging.getLogger(__name__)

NS_MUC_OWNER = "http://jabber.org/protocol/muc#owner"
NS_DATA = "jabber:x:data"
JOIN_TIMEOUT = 30.0
ROOM_CREATED = 201
#: How often a room is told that the hub cannot see real JIDs there (seconds).
HIDDEN_JIDS_INTERVAL = 600.0

HIDDEN_JIDS = (
    "I cannot see who you are in this room, so I do nothing here. "
    "Make the room non-anonymous, or make me a moderator."
)


class MucService:
    """Joins the configured rooms and answers the commands addressed to the hub."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        commands: ChatCommands,
        access: AccessPolicy,
        rooms: Sequence[RoomSettings],
    ) -> None:
        self.xmpp = xmpp
        self.commands = commands
        self.access = access
        self.rooms = {JID(room.jid).bare: room for room in rooms}
        self.gate = StrangerGate()
        self.hidden_gate = StrangerGate(interval=HIDDEN_JIDS_INTERVAL)
        self.joined: set[str] = set()
        self.on_joined: list[Callable[[str], None]] = []  # called with the room's bare JID
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("groupchat_message", self._on_groupchat)

    def is_room(self, jid: JID) -> bool:
        """True for a configured room and its occupants (their messages are ours to judge)."""
        return jid.bare.lower() in self.rooms

    async def close(self) -> None:
        """Stop joins and commands in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- joining

    def _on_session_start(self, _event: Any) -> None:
        # A new session has left every room (a resumed one has not, and
        # slixmpp does not fire session_start for it).
        self.joined.clear()
        for room in self.rooms.values():
            self._spawn(self._join(room), f"join {room.jid}")

    def _on_disconnected(self, _event: Any) -> None:
        self.joined.clear()

    async def _join(self, room: RoomSettings) -> None:
        plugin: Any = self.xmpp.plugin["xep_0045"]  # untyped
        try:
            presence, *_ = await plugin.join_muc_wait(
                JID(room.jid),
                room.nick,
                password=room.password,
                maxstanzas=0,  # no history: old lines are not commands anyway
                timeout=JOIN_TIMEOUT,
            )
        except PresenceError as err:
            _LOGGER.warning(
                "cannot join room %s as %s: %s", room.jid, room.nick, err.presence["error"]
            )
            return
        except TimeoutError:
            _LOGGER.warning("cannot join room %s: no answer within %g s", room.jid, JOIN_TIMEOUT)
            return
        if ROOM_CREATED in presence["muc"]["status_codes"]:
            await self._make_instant(room)
        self.joined.add(JID(room.jid).bare)
        _LOGGER.info("joined room %s as %s", room.jid, room.nick)
        for callback in self.on_joined:
            callback(JID(room.jid).bare)

    async def _make_instant(self, room: RoomSettings) -> None:
        """Accept the default configuration of a room we created, which unlocks it."""
        query = Element("{" + NS_MUC_OWNER + "}query")
        form = Element("{" + NS_DATA + "}x")
        form.set("type", "submit")
        query.append(form)
        iq: Any = self.xmpp.make_iq_set(ito=JID(room.jid))
        iq.xml.append(query)
        try:
            await iq.send(timeout=JOIN_TIMEOUT)
        except (IqError, IqTimeout) as err:
            _LOGGER.warning("room %s was created but could not be unlocked: %s", room.jid, err)

    def post(self, room_jid: str, text: str) -> None:
        """Say ``text`` in a room the hub is in (ignored while it is not)."""
        bare = JID(room_jid).bare
        if bare in self.joined:
            self.xmpp.send_message(mto=JID(bare), mbody=text, mtype="groupchat")

    # --------------------------------------------------------------- commands

    def _on_groupchat(self, message: Any) -> None:
        sender: JID = message["from"]
        room = self.rooms.get(sender.bare.lower())
        if room is None or not sender.resource or sender.resource == room.nick:
            return  # another room, the room itself, or our own echo
        if delay_stamp(message) is not None:
            return  # history, not a command
        line = _addressed_to(room.nick, message["body"])
        if line is None:
            return
        plugin: Any = self.xmpp.plugin["xep_0045"]
        real = plugin.get_jid_property(JID(sender.bare), sender.resource, "jid")
        if not real:
            if self.hidden_gate.allow(sender.bare):
                _LOGGER.warning("room %s does not show hubd the real JIDs", sender.bare)
                self._say(sender, HIDDEN_JIDS)
            return
        real_jid = str(real)
        if not self.access.allows_any(real_jid, Role.READER):
            if self.gate.allow(JID(real_jid).bare):
                _LOGGER.info("refused a room command from %s (%s)", real_jid, sender)
                self._say(sender, NOT_AUTHORISED)
            return
        self._spawn(self._answer(sender, real_jid, line), f"room command {sender}")

    async def _answer(self, sender: JID, real_jid: str, line: str) -> None:
        lock = self._locks.setdefault(real_jid, asyncio.Lock())
        try:
            async with lock:
                reply = await self.commands.handle(real_jid, line)
        except Exception:
            _LOGGER.exception("room command %r from %s failed", line[:80], real_jid)
            reply = "Something went wrong inside hubd; its log has the details."
        finally:
            if not lock.locked():
                self._locks.pop(real_jid, None)
        self._say(sender, reply)

    def _say(self, occupant: JID, text: str) -> None:
        """Answer ``occupant`` in the room, naming them as group chats do."""
        if isinstance(text, SharedFile):  # a picture: the body must be the URL alone
            message = self.xmpp.make_message(mto=JID(occupant.bare), mtype="groupchat")
            link_message(message, text).send()
            return
        self.xmpp.send_message(
            mto=JID(occupant.bare), mbody=f"{occupant.resource}: {text}", mtype="groupchat"
        )


def _addressed_to(nick: str, body: str) -> str | None:
    """The command in ``body`` if it starts with ``nick`` (``hub: list``), else None."""
    match = re.match(rf"\s*@?{re.escape(nick)}\b[\s:,>]*(.*)", body, re.IGNORECASE | re.DOTALL)
    if match is None:
        return None
    return match.group(1).strip()
