"""What a chat command is: its table entry, one invocation of it, the error it answers with.

The vocabulary every owner of commands uses to register its own
(:meth:`hubd.people.commands.ChatCommands.register`): the device commands,
``watch``, the owners' presence-request answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from hubd.core.access import Role


class CommandError(Exception):
    """A command cannot be carried out; the message says what to type instead."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """One command as a person sent it."""

    sender: str  # full JID: the audited actor of a write
    role: Role
    word: str  # the command word as typed, lowercased
    args: tuple[str, ...]
    sent_at: datetime | None = None  # the delay stamp, when the message was held back


class SharedFile(str):
    """A reply that is the address (URL) of a file the hub shared, e.g. a chart.

    Sent as the whole body, and the XMPP side adds the same URL as Out-of-Band
    Data (XEP-0066), so a client shows the picture inline.
    """

    __slots__ = ()


Handler = Callable[[Invocation], Awaitable[str]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One entry of the dispatch table."""

    name: str
    usage: str  # e.g. "read <device> [<field>]"
    summary: str  # a few words for ``help``
    role: Role  # the weakest role that may run it
    run: Handler
    controls: bool = False  # changes something: refused when the message is stale
    example: Callable[[], str] | None = None  # ``help <command>``: a line to try, or ""
