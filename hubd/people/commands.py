"""Chat commands for people: parse a typed line, run it through the hub, word the reply.

No XMPP here.  ``hubd/xmpp/chat.py`` (one-to-one chat), ``hubd/xmpp/muc.py``
(group chat) and ``hubd/xmpp/adhoc.py`` (XEP-0050) all come through this
module; the roles are :class:`~hubd.core.access.AccessPolicy`'s.

The grammar is the public one of config-contract.md: ``help``, ``list``,
``read <device> [<field>]``, ``set <device> <field> <value>``, ``watch``,
``unwatch``, ``watching``.  Input is forgiving: command words and names in any
case, a device by id or name (spaces, ``-`` and ``_`` alike) or a unique
beginning of either, ``porch-light.state`` for device and field, ``on``/``off``
for booleans, and ``set DEVICE VALUE`` when the device has one writable field.
Replies are short lines for a phone screen; every error says what to type.

Commands live in a dispatch table (:meth:`ChatCommands.register`), and each
is registered once, by its owner: ``help`` here, ``list``/``read``/``set`` by
:mod:`hubd.people.device_commands`, ``watch``/``unwatch``/``watching`` by
:mod:`hubd.people.watch` when the hub has an event engine, ``history``/``plot``
by :mod:`hubd.people.history_commands` when it has a state file, the owners'
presence-request answers by :mod:`hubd.xmpp.presence_requests`.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.driver import utc_now
from hubd.core.hub import Hub
from hubd.errors import HubdError
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.device_commands import DeviceCommands
from hubd.people.lookup import DeviceLookup
from hubd.people.wording import BULLET

if TYPE_CHECKING:  # imported where remotes: is configured (memory of a hub without)
    from hubd.people.remote_commands import RemoteDeviceCommands

#: A whole command (a read, a write) is abandoned after this many seconds.
COMMAND_TIMEOUT = 30.0
#: A control command that reaches the hub later than this (offline storage,
#: a hub that was away) is not carried out: the person may no longer want it.
STALE_CONTROL = timedelta(minutes=2)

NOT_AUTHORISED = "Not authorised."


def _split(line: str) -> list[str]:
    """Words of a line; quotes group words, an unbalanced quote is taken literally."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


class ChatCommands:
    """The command table, its dispatcher and ``help``.

    ``handle()`` takes one line from a person and returns the reply text.
    Strangers get :data:`NOT_AUTHORISED` and nothing else: not even whether a
    device exists.
    """

    def __init__(
        self,
        hub: Hub,
        access: AccessPolicy,
        *,
        now: Callable[[], datetime] = utc_now,
        timeout: float = COMMAND_TIMEOUT,
        remote: RemoteDeviceCommands | None = None,
    ) -> None:
        self.hub = hub
        self.access = access
        self.now = now
        self.timeout = timeout
        self.commands: dict[str, Command] = {}
        self.lookup = DeviceLookup(hub, access)
        self.devices = DeviceCommands(hub, access, self.lookup, now, remote)
        self.register(
            Command(
                name="help",
                usage="help [<command>]",
                summary="what you can type",
                role=Role.READER,
                run=self._help,
            )
        )
        for command in self.devices.commands():
            self.register(command)

    def register(self, command: Command) -> None:
        """Add ``command`` to the table, replacing one of the same name."""
        self.commands[command.name] = command

    def available(self, role: Role) -> list[Command]:
        """The commands ``role`` may run, in table order."""
        return [c for c in self.commands.values() if role >= c.role]

    async def handle(self, sender: str, line: str, *, sent_at: datetime | None = None) -> str:
        """Run one line typed by ``sender`` (a full JID) and return the reply."""
        with self.lookup.viewing(sender):
            return await self._handle(sender, line, sent_at)

    async def _handle(self, sender: str, line: str, sent_at: datetime | None) -> str:
        # The strongest role anywhere decides which commands exist for the sender;
        # each device is then checked on its own (a device's access: may grant more).
        role = self.access.best_role(sender)
        if role < Role.READER:
            return NOT_AUTHORISED
        words = _split(line.strip())
        if not words:
            return "Type help for the commands."
        # "!read", "read:" and "Help?" are what people type; the word is what counts.
        word = words[0].lower().lstrip("!/").rstrip(":,?!.")
        command = self.commands.get(word)
        if command is None:
            return self._unknown(word, words)
        if role < command.role:
            if command.controls:
                audit_refused(sender, " ".join(words)[:200], f"{role.name.lower()} may not {word}")
            if command.role >= Role.OWNER:
                return f"{word} is for the hub's owners. Type help for your commands."
            return f"{word} needs control rights; you may read. Type help for your commands."
        invocation = Invocation(sender, role, word, tuple(words[1:]), sent_at)
        if command.controls and sent_at is not None and self.now() - sent_at > STALE_CONTROL:
            stamp = sent_at.strftime("%H:%M UTC")
            return f"Not done: you sent this at {stamp} and it arrived only now. Send it again."
        try:
            async with asyncio.timeout(self.timeout):
                return await command.run(invocation)
        except CommandError as err:
            return str(err)
        except TimeoutError:
            return f"No answer within {self.timeout:g} s; {word} abandoned."
        except HubdError as err:
            return f"Could not {word}: {err}"

    def _unknown(self, word: str, words: Sequence[str]) -> str:
        node = self.lookup.maybe_device(words)
        if node is not None:
            return f"Unknown command '{word}'. Did you mean: read {node.id}"
        return f"Unknown command '{word}'. Type help for the commands."

    async def _help(self, call: Invocation) -> str:
        if call.args:
            command = self.commands.get(call.args[0].lower())
            if command is not None and call.role >= command.role:
                example = command.example() if command.example is not None else ""
                return f"{command.usage}: {command.summary}. {example}".strip()
        lines = ["Commands:"]
        for command in self.available(call.role):
            lines.append(f"{BULLET}{command.usage}: {command.summary}")
        lines.append("A device is its id or name, any case; the first letters are enough.")
        return "\n".join(lines)
