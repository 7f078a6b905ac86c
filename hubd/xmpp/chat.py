"""Chat for people: a ``<message>`` with a ``<body>`` is a command, the reply goes back as chat.

Every XMPP client can send a chat message, so this is the interface that
works everywhere (digest §7.1).  The words are handled by
:class:`hubd.people.commands.ChatCommands`; this module is only the XMPP side:

* which messages are commands: type ``chat`` or ``normal`` with a body, not
  from the hub's own account, not an error, not a machine-interface payload
  (XEP-0325 ``set`` in a message) and not a group-chat invitation;
* the reply goes to the full JID that asked, in the type it was asked in;
* a held-back message (XEP-0203 ``delay``, e.g. from offline storage) still
  gets an answer, but a control in it that is too old is not carried out;
* strangers get one short "Not authorised." and learn nothing else; those
  replies are rate-limited per sender and overall, so a flood of spoofed or
  bouncing messages cannot turn the hub into a reply cannon;
* one sender's commands run in the order sent, each in a task this service
  owns; a sender with too many commands in flight gets told to wait.

:meth:`ChatService.send_text` sends the hub's own chat messages (events),
with a ``delay`` stamp when what they report happened a while ago.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from hubd.core import xsd
from hubd.core.access import AccessPolicy, Role
from hubd.core.driver import utc_now
from hubd.core.limits import PolicyViolation, RateLimited
from hubd.errors import AccessDenied
from hubd.people.command import SharedFile
from hubd.people.commands import NOT_AUTHORISED, ChatCommands
from hubd.people.wording import delayed_text
from hubd.xmpp.chat_private import PrivateChat
from hubd.xmpp.oob import link_message

if TYPE_CHECKING:  # only imported with the omemo extra, by hubd/xmpp/client.py
    from hubd.xmpp.omemo import OmemoService

_LOGGER = logging.getLogger(__name__)

NS_DELAY = "urn:xmpp:delay"
_CLIENT_MESSAGE = "{jabber:client}message"
_BODY = "{jabber:client}body"
# Payloads that make a message something other than a person's command.
_NOT_COMMANDS = (
    "{urn:xmpp:iot:",  # machine interface: XEP-0325 set in a message, readout results
    "{http://jabber.org/protocol/muc#user}",  # mediated group-chat invitations
    "{jabber:x:conference}",  # direct invitations
    "{urn:xmpp:carbons:",  # copies of our own traffic
)
# OMEMO payloads (legacy 0.3 and OMEMO 2): the body, if any, is only a fallback notice.
_ENCRYPTED = ("{eu.siacs.conversations.axolotl}encrypted", "{urn:xmpp:omemo:2}encrypted")
NO_OMEMO = "This hub cannot read encrypted messages: write to it without OMEMO."

#: A stranger gets at most one refusal per this many seconds...
STRANGER_INTERVAL = 600.0
#: ... and all strangers together at most this many per minute.
STRANGER_BURST = 10
#: Senders remembered for the per-stranger limit (oldest forgotten first).
STRANGERS_REMEMBERED = 1024
#: Commands one sender may have in flight before being told to wait.
MAX_IN_FLIGHT = 5
#: An event older than this when sent says so and carries a delay stamp.
DELAYED_AFTER = timedelta(seconds=30)


class _CommandMessages(MatcherBase):
    """Matches a message a person may have typed as a command."""

    def __init__(self, *, encrypted: bool = False) -> None:
        super().__init__("hubd chat")
        self.encrypted = encrypted  # also OMEMO messages without a body (key exchanges)

    def match(self, stanza: Any) -> bool:
        """True for chat/normal messages with a body and no machine payload."""
        xml: Element = stanza.xml
        if xml.tag != _CLIENT_MESSAGE or xml.get("type", "normal") not in ("chat", "normal"):
            return False
        if self.encrypted and is_encrypted(xml):
            return not any(
                isinstance(child.tag, str) and child.tag.startswith(_NOT_COMMANDS) for child in xml
            )
        body = xml.find(_BODY)
        if body is None or not (body.text or "").strip():
            return False
        return not any(
            isinstance(child.tag, str) and child.tag.startswith(_NOT_COMMANDS) for child in xml
        )


class StrangerGate:
    """Decides whether a stranger gets a refusal now (per-sender and global limits)."""

    def __init__(
        self,
        *,
        interval: float = STRANGER_INTERVAL,
        burst: int = STRANGER_BURST,
        remembered: int = STRANGERS_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.burst = burst
        self.remembered = remembered
        self.clock = clock
        self._last: OrderedDict[str, float] = OrderedDict()
        self._recent: list[float] = []

    def allow(self, bare_jid: str) -> bool:
        """True if ``bare_jid`` may be answered now; records the answer."""
        now = self.clock()
        last = self._last.get(bare_jid)
        if last is not None and now - last < self.interval:
            return False
        self._recent = [t for t in self._recent if now - t < 60.0]
        if len(self._recent) >= self.burst:
            return False
        self._recent.append(now)
        self._last[bare_jid] = now
        self._last.move_to_end(bare_jid)
        while len(self._last) > self.remembered:
            self._last.popitem(last=False)
        return True


def is_encrypted(xml: Element) -> bool:
    """Whether a message carries an OMEMO payload (of any version)."""
    return any(child.tag in _ENCRYPTED for child in xml)


def delay_stamp(message: Any) -> datetime | None:
    """The XEP-0203 stamp of ``message`` (when it was really sent), if it carries one."""
    for child in message.xml:
        if child.tag == "{" + NS_DELAY + "}delay":
            try:
                stamp = xsd.parse_datetime(child.get("stamp", ""))
            except ValueError:
                return None
            # XEP-0203 stamps are UTC; a zone-less one is read as UTC, not local.
            return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
    return None


class ChatService:
    """Answers chat commands; sends the hub's own chat messages."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        commands: ChatCommands,
        access: AccessPolicy,
        *,
        ignore: Callable[[JID], bool] = lambda _jid: False,
        gate: StrangerGate | None = None,
        now: Callable[[], datetime] = utc_now,
        omemo: OmemoService | None = None,
        require_encryption: bool = False,
    ) -> None:
        self.xmpp = xmpp
        self.commands = commands
        self.access = access
        self.ignore = ignore  # e.g. the group-chat rooms: muc.py answers those
        self.gate = gate or StrangerGate()
        self.now = now
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._in_flight: dict[str, int] = {}
        self.private = None if omemo is None else PrivateChat(omemo, require_encryption)
        matcher = _CommandMessages(encrypted=omemo is not None)
        xmpp.register_handler(Callback("hubd chat", matcher, self._on_message))

    async def close(self) -> None:
        """Cancel the commands in flight."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_message(self, message: Any) -> None:
        sender: JID = message["from"]
        if sender.bare == self.xmpp.boundjid.bare or self.ignore(sender):
            return
        encrypted = is_encrypted(message.xml)
        try:
            # The same entry check as every interface: rate, then role, then size.
            self.access.admit(sender.bare, Role.READER, message.xml.find(_BODY))
        except RateLimited:
            # Silently: answering a flood would make the hub a reply cannon.
            _LOGGER.debug("ignored a chat message from %s (rate limit)", sender)
            return
        except PolicyViolation:
            message.reply("That is too long for a command.").send()
            return
        except AccessDenied:
            if self.gate.allow(sender.bare):
                _LOGGER.info("refused a chat command from %s (not in access lists)", sender)
                message.reply(NOT_AUTHORISED).send()
            else:
                _LOGGER.debug("ignored a chat message from %s (refusal rate-limited)", sender)
            return
        if encrypted and self.private is None:
            message.reply(NO_OMEMO).send()
            return
        key = sender.full
        if self._in_flight.get(key, 0) >= MAX_IN_FLIGHT:
            message.reply("Busy with your earlier commands; send this again in a moment.").send()
            return
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        task = asyncio.create_task(self._answer(message, key, encrypted), name=f"chat {key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, message: Any, key: str, encrypted: bool = False) -> None:
        # One lock per sender, acquired in arrival order (asyncio.Lock is FIFO),
        # so "set" then "read" are answered in the order they were typed.
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if self.private is not None:
                    # Encrypted in, encrypted out; plaintext perhaps refused (require).
                    await self.private.answer(
                        message, key, encrypted, self.commands, delay_stamp(message)
                    )
                    return
                line = message["body"]
                reply = await self.commands.handle(key, line, sent_at=delay_stamp(message))
                answer = message.reply(reply)
                if isinstance(reply, SharedFile):
                    link_message(answer, reply)  # shown inline by the client
                answer.send()
        except Exception:
            _LOGGER.exception("chat command %r from %s failed", message["body"][:80], key)
            message.reply("Something went wrong inside hubd; its log has the details.").send()
        finally:
            left = self._in_flight.get(key, 1) - 1
            if left:
                self._in_flight[key] = left
            else:
                self._in_flight.pop(key, None)
                self._locks.pop(key, None)

    def send_link(self, to: JID | str, url: str) -> None:
        """Send a shared file's address to ``to``: body and XEP-0066 OOB, shown inline."""
        link_message(self.xmpp.make_message(mto=to, mtype="chat"), url).send()

    def send_text(
        self,
        to: JID | str,
        text: str,
        *,
        happened_at: datetime | None = None,
        mtype: Literal["chat", "normal", "groupchat"] = "chat",
    ) -> None:
        """Send ``text`` to ``to``; late news says so and carries an XEP-0203 stamp."""
        message = self.xmpp.make_message(mto=to, mtype=mtype)
        now = self.now()
        if happened_at is not None and now - happened_at > DELAYED_AFTER:
            message["body"] = delayed_text(text, happened_at, now)
            delay = Element("{" + NS_DELAY + "}delay")
            delay.set("from", self.xmpp.boundjid.bare)
            delay.set("stamp", xsd.format_datetime(happened_at))
            message.xml.append(delay)
        else:
            message["body"] = text
        if self.private is not None and mtype == "chat" and self.private.send(message):
            return  # encrypted, for a person whose last command came encrypted
        message.send()
