"""Chat commands under OMEMO: decrypt, run exactly as plaintext, answer encrypted.

Used by :class:`hubd.xmpp.chat.ChatService` when OMEMO is on.  The access
check and the stranger's refusal happen before this (a stranger's message is
never decrypted).  Here:

* an encrypted command is decrypted and run by the same command layer as a
  plaintext one (same checks, same audit line); the answer goes back
  encrypted, and if it cannot be encrypted only a notice that says so goes in
  the clear, never the answer;
* a message that cannot be decrypted (malformed, not for the hub's device, a
  replay) is answered with one short plaintext notice and logged once per
  sender (at WARNING; later ones at DEBUG);
* how each person last wrote is remembered (in the key store, so across
  restarts): the hub's own messages to them (``watch`` events, notices) go
  encrypted to whoever last wrote encrypted;
* with ``omemo: {require: true}`` a plaintext command is not run: the answer
  says to turn encryption on, with the hub's fingerprint.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from hubd.errors import DeviceDistrusted, EncryptionFailed, OmemoUnavailable
from hubd.people.command import SharedFile
from hubd.xmpp.oob import link_message

if TYPE_CHECKING:
    from hubd.people.commands import ChatCommands
    from hubd.xmpp.omemo import OmemoService

_LOGGER = logging.getLogger(__name__)

UNDECRYPTABLE = "Could not decrypt that message (OMEMO). Send it again; type fingerprint to check."
UNAVAILABLE = "Encryption is not available on the hub right now: nothing was done."
NOT_ENCRYPTED = "Could not encrypt the answer for you ({reason}); nothing sent in the clear."
DISTRUSTED = "The hub's owners distrusted this device of yours: nothing was done."
REQUIRED = "This hub takes commands end-to-end encrypted only: turn on OMEMO for this chat."
#: Senders whose undecryptable messages were logged (oldest forgotten first).
LOGGED_SENDERS = 1024


class PrivateChat:
    """The OMEMO side of chat commands (see the module docstring)."""

    def __init__(self, omemo: OmemoService, require: bool) -> None:
        self.omemo = omemo
        self.require = require
        self._logged: OrderedDict[str, None] = OrderedDict()

    async def answer(
        self,
        message: Any,
        key: str,
        encrypted: bool,
        commands: ChatCommands,
        sent_at: datetime | None,
    ) -> None:
        """Answer one command message (the caller holds the sender's lock)."""
        bare = message["from"].bare
        if not encrypted:
            if self.require:
                message.reply(await self._required_hint()).send()
                return
            await self.omemo.remember(bare, False)
            line = message["body"]
        else:
            try:
                line, _device = await self.omemo.decrypt(message)
            except OmemoUnavailable:
                message.reply(UNAVAILABLE).send()
                return
            except DeviceDistrusted:
                _LOGGER.info("OMEMO: ignored a command from a distrusted device of %s", bare)
                message.reply(DISTRUSTED).send()
                return
            except Exception as err:  # the library raises many kinds for bad input
                self._log_undecryptable(message["from"], err)
                message.reply(UNDECRYPTABLE).send()
                return
            if not line.strip():
                return  # a key exchange or a heartbeat: nothing was typed
            await self.omemo.remember(bare, True)
        reply = await commands.handle(key, line, sent_at=sent_at)
        answer = message.reply(str(reply))
        if not encrypted:
            if isinstance(reply, SharedFile):
                link_message(answer, reply)
            answer.send()
            return
        try:
            sealed = await self.omemo.encrypt(answer)
        except EncryptionFailed as err:
            _LOGGER.warning("OMEMO: cannot encrypt the answer to %s: %s", key, err)
            message.reply(NOT_ENCRYPTED.format(reason=_short(err))).send()
            return
        sealed.send()

    def send(self, message: Any) -> bool:
        """Send the hub's own chat ``message`` encrypted if its person wrote encrypted last.

        False when it is for someone who did not: the caller sends it as it is.
        """
        if not self.omemo.prefers_encrypted(message["to"].bare):
            return False
        self.omemo.send_encrypted(message)
        return True

    async def _required_hint(self) -> str:
        try:
            return f"{REQUIRED} The hub's fingerprint: {await self.omemo.own_fingerprint()}"
        except OmemoUnavailable:
            return REQUIRED

    def _log_undecryptable(self, sender: Any, err: Exception) -> None:
        bare = sender.bare
        first = bare not in self._logged
        self._logged[bare] = None
        self._logged.move_to_end(bare)
        while len(self._logged) > LOGGED_SENDERS:
            self._logged.popitem(last=False)
        _LOGGER.log(
            logging.WARNING if first else logging.DEBUG,
            "OMEMO: cannot decrypt a message from %s: %s",
            sender,
            _short(err),
        )


def _short(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return f"{type(err).__name__}: {text[:120]}" if text else type(err).__name__
