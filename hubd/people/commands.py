"""Chat commands for people: parse a typed line, run it through the hub, word the reply.

No XMPP here.  ``hubd/xmpp/chat.py`` (one-to-one chat), ``hubd/xmpp/muc.py``
(group chat) and ``hubd/xmpp/adhoc.py`` (XEP-0050) all come through this
module, and this module reaches the devices only through
:meth:`Hub.read <hubd.core.hub.Hub.read>` and :meth:`Hub.write <hubd.core.hub.Hub.write>`
(with the sender's full JID as the audited actor), the same path as the
machine interface; the roles are :class:`~hubd.core.access.AccessPolicy`'s.

The grammar is the public one of config-contract.md: ``help``, ``list``,
``read <device> [<field>]``, ``set <device> <field> <value>``, ``watch``,
``unwatch``, ``watching``.  Input is forgiving: command words and names in any
case, a device by id or name (spaces, ``-`` and ``_`` alike) or a unique
beginning of either, ``porch-light.state`` for device and field, ``on``/``off``
for booleans, and ``set DEVICE VALUE`` when the device has one writable field.
Replies are short lines for a phone screen; every error says what to type.

Commands live in a dispatch table (:meth:`ChatCommands.register`), so the
event subscriptions add ``watch``/``unwatch``/``watching`` there without
touching the rest.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.driver import utc_now
from hubd.core.hub import Hub
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, Value
from hubd.core.node import Node
from hubd.errors import (
    ControlError,
    DriverError,
    DriverUnavailable,
    HubdError,
    InvalidValue,
    NodeNotFound,
)

_LOGGER = logging.getLogger(__name__)

#: A whole command (a read, a write) is abandoned after this many seconds.
COMMAND_TIMEOUT = 30.0
#: A control command that reaches the hub later than this (offline storage,
#: a hub that was away) is not carried out: the person may no longer want it.
STALE_CONTROL = timedelta(minutes=2)
#: Longest string value shown in a reply; serial lines can be long.
MAX_TEXT = 120

NOT_AUTHORISED = "Not authorised."
BULLET = "- "
SEPARATOR = " · "

_SPACES = re.compile(r"[\s_-]+")
_STATUS_ONLY = frozenset({Category.STATUS})

# The sender of the command being handled.  Lookups and listings show only the
# devices that sender may read; a context variable (each command runs in its own
# task) saves threading the sender through every helper.
_VIEWER: contextvars.ContextVar[str | None] = contextvars.ContextVar("viewer", default=None)


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


# --------------------------------------------------------------------------- formatting


def ago(then: datetime, now: datetime) -> str:
    """Say how long ago ``then`` was, for people: ``just now``, ``2 min ago``, ``3 days ago``."""
    seconds = (now - then).total_seconds()
    if seconds < 10:
        return "just now"  # also a clock a little ahead of ours
    if seconds < 60:
        return f"{int(seconds)} s ago"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 24:
        return f"{hours} h ago"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} ago"


def delayed_text(text: str, happened_at: datetime, now: datetime) -> str:
    """Say that news comes late: ``text (delayed: happened 2 h ago, at 14:03 UTC)``."""
    stamp = happened_at.astimezone(UTC).strftime("%H:%M UTC")
    return f"{text} (delayed: happened {ago(happened_at, now)}, at {stamp})"


def format_value(spec: FieldSpec | None, value: Value) -> str:
    """One value for people: ``on``, ``21.5 °C``, ``45%``; numbers keep their decimals."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, Decimal):
        text = format(value, "f")  # never 1E+1: keep the decimals the sensor gave
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    elif isinstance(value, date | time):
        text = value.isoformat()
    elif isinstance(value, timedelta):
        text = _duration(value)
    elif isinstance(value, str):
        text = value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
        text = text or "(empty)"
    else:
        text = str(value)
    unit = spec.unit if spec is not None else None
    if unit and not isinstance(value, bool):
        text += unit if unit == "%" else f" {unit}"
    return text


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def format_field(spec: FieldSpec | None, value: FieldValue) -> str:
    """``state on``: the field name as people type it in ``set``, then the value."""
    return f"{value.name} {format_value(spec, value.value)}"


def device_label(node: Node) -> str:
    """``porch-light (Porch light)``, or the id alone when the name is the id."""
    return node.id if node.name == node.id else f"{node.id} ({node.name})"


def shown_values(values: Iterable[FieldValue]) -> list[FieldValue]:
    """The values worth showing: ``online`` is said separately (the line exists, or "offline")."""
    return [v for v in values if v.name != "online"]


def format_list(
    nodes: Sequence[Node], open_fields: Callable[[Node], frozenset[str] | None] | None = None
) -> str:
    """The ``list`` reply: a count, then one line per device with its latest values.

    ``open_fields`` gives, per device, the only fields to show (None: all).
    """
    offline = sum(1 for n in nodes if not n.online)
    count = f"{len(nodes)} device{'s' if len(nodes) != 1 else ''}"
    lines = [f"{count}, {offline} offline:" if offline else f"{count}:"]
    if not nodes:
        return "No devices are configured."
    for node in nodes:
        allowed = open_fields(node) if open_fields is not None else None
        lines.append(BULLET + device_label(node) + ": " + _summary(node, allowed))
    return "\n".join(lines)


def _summary(node: Node, allowed: frozenset[str] | None) -> str:
    if not node.online:
        reason = f" ({node.state_message})" if node.state_message else ""
        return f"{node.state.value}{reason}"
    values = [
        v
        for v in shown_values(node.cache.values())
        if (allowed is None or v.name in allowed) and not _quiet_status(node.spec.get(v.name), v)
    ]
    if not values:
        return "no values yet"
    return SEPARATOR.join(format_field(node.spec.get(v.name), v) for v in values)


def _quiet_status(spec: FieldSpec | None, value: FieldValue) -> bool:
    """A status field with nothing to report (``errors 0``, an empty ``last_error``).

    The one-line summary of ``list`` leaves these out; ``read`` shows them.
    """
    return spec is not None and spec.categories == _STATUS_ONLY and not value.value


def format_read(node: Node, values: Sequence[FieldValue], now: datetime) -> str:
    """The ``read`` reply: one line for one field, else a header and one line per field."""
    if not values:
        return f"{node.name}: no values yet."
    if len(values) == 1:
        value = values[0]
        spec = node.spec.get(value.name)
        return f"{node.name}: {format_field(spec, value)} ({ago(value.timestamp, now)})"
    newest = max(v.timestamp for v in values)
    header_age = ago(newest, now)
    lines = [f"{node.name} ({header_age}):"]
    for value in values:
        line = BULLET + format_field(node.spec.get(value.name), value)
        age = ago(value.timestamp, now)
        if age != header_age:
            line += f" ({age})"
        lines.append(line)
    return "\n".join(lines)


def example_value(spec: FieldSpec) -> str:
    """A value that ``spec`` accepts, to show in a hint."""
    if spec.type is FieldType.BOOLEAN:
        return "on"
    if spec.type is FieldType.ENUM:
        return spec.options[0]
    if spec.type in (FieldType.NUMERIC, FieldType.INT, FieldType.LONG):
        low, high = spec.minimum, spec.maximum
        if low is not None and high is not None:
            middle = (low + high) / 2
            if spec.type is not FieldType.NUMERIC:
                middle = middle.to_integral_value()
            return format(middle.normalize(), "f")
        return format(low if low is not None else (high if high is not None else 1), "f")
    return {
        FieldType.STRING: "hello",
        FieldType.DATE: "2024-01-31",
        FieldType.TIME: "07:30:00",
        FieldType.DATETIME: "2024-01-31T07:30:00Z",
        FieldType.DURATION: "PT5M",
    }.get(spec.type, "1")


def _normal(text: str) -> str:
    """Compare names the way people type them: any case, spaces, ``-`` and ``_`` alike."""
    return _SPACES.sub("-", text.strip().lower())


def _split(line: str) -> list[str]:
    """Words of a line; quotes group words, an unbalanced quote is taken literally."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


# ----------------------------------------------------------------------- the commands


class ChatCommands:
    """The command table and the built-in commands (help, list, read, set).

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
    ) -> None:
        self.hub = hub
        self.access = access
        self.now = now
        self.timeout = timeout
        self.commands: dict[str, Command] = {}
        for command in self._builtins():
            self.register(command)

    def _builtins(self) -> list[Command]:
        return [
            Command(
                name="help",
                usage="help [<command>]",
                summary="what you can type",
                role=Role.READER,
                run=self._help,
            ),
            Command(
                name="list",
                usage="list",
                summary="every device and its latest values",
                role=Role.READER,
                run=self._list,
            ),
            Command(
                name="read",
                usage="read <device> [<field>]",
                summary="read a device now",
                role=Role.READER,
                run=self._read,
            ),
            Command(
                name="set",
                usage="set <device> <field> <value>",
                summary="control a device",
                role=Role.CONTROLLER,
                run=self._set,
                controls=True,
            ),
            # Placeholders until event subscriptions exist: the events module
            # registers the real ones under the same names.
            Command(
                name="watch",
                usage="watch <device> [<field>] [<condition>]",
                summary="a message when a value changes (coming soon)",
                role=Role.READER,
                run=self._coming_soon,
            ),
            Command(
                name="unwatch",
                usage="unwatch <device>",
                summary="stop watching (coming soon)",
                role=Role.READER,
                run=self._coming_soon,
            ),
            Command(
                name="watching",
                usage="watching",
                summary="what you watch (coming soon)",
                role=Role.READER,
                run=self._coming_soon,
            ),
        ]

    def register(self, command: Command) -> None:
        """Add ``command`` to the table, replacing one of the same name."""
        self.commands[command.name] = command

    def available(self, role: Role) -> list[Command]:
        """The commands ``role`` may run, in table order."""
        return [c for c in self.commands.values() if role >= c.role]

    async def handle(self, sender: str, line: str, *, sent_at: datetime | None = None) -> str:
        """Run one line typed by ``sender`` (a full JID) and return the reply."""
        token = _VIEWER.set(sender)
        try:
            return await self._handle(sender, line, sent_at)
        finally:
            _VIEWER.reset(token)

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

    def nodes_for(self, sender: str | None = None) -> list[Node]:
        """The devices ``sender`` (default: the sender being answered) may read, in order."""
        viewer = sender if sender is not None else _VIEWER.get()
        if viewer is None:
            return list(self.hub.nodes.values())  # no sender: an internal caller
        return self.access.visible(viewer, self.hub.nodes)

    def open_fields(
        self, node: Node, needed: Role = Role.READER, sender: str | None = None
    ) -> frozenset[str] | None:
        """The fields of ``node`` that ``sender`` (default: the sender being answered)
        may use with ``needed``; None for all.

        XEP-0324: a provisioning server may narrow a JID to some fields (and
        control parameters); every other field is treated as if the device had
        none such, so the JID learns nothing of it.
        """
        viewer = sender if sender is not None else _VIEWER.get()
        return None if viewer is None else self.access.fields_for(viewer, node.id, needed)

    def fields_of(
        self, node: Node, needed: Role = Role.READER, sender: str | None = None
    ) -> list[FieldSpec]:
        """The fields of ``node`` open to the sender with ``needed`` (see :meth:`open_fields`)."""
        allowed = self.open_fields(node, needed, sender)
        return [s for s in node.spec.fields if allowed is None or s.name in allowed]

    def writable_of(self, node: Node, sender: str | None = None) -> list[FieldSpec]:
        """The control parameters of ``node`` the sender may set."""
        return [s for s in self.fields_of(node, Role.CONTROLLER, sender) if s.writable]

    def list_reply(self, sender: str | None = None) -> str:
        """The ``list`` reply for ``sender``: its devices, and of each only its fields."""
        return format_list(self.nodes_for(sender), lambda n: self.open_fields(n, sender=sender))

    def _unknown(self, word: str, words: Sequence[str]) -> str:
        node = self._maybe_device(words)
        if node is not None:
            return f"Unknown command '{word}'. Did you mean: read {node.id}"
        return f"Unknown command '{word}'. Type help for the commands."

    def _maybe_device(self, words: Sequence[str]) -> Node | None:
        try:
            node, _ = self.resolve_device(words)
        except CommandError:
            return None
        return node

    # ---------------------------------------------------------------- lookups

    def resolve_device(self, words: Sequence[str]) -> tuple[Node, list[str]]:
        """Find the device the first words name; return it and the remaining words.

        The longest run of words that names a device wins, so a name with
        spaces needs no quotes (``read porch light``).  ``DEVICE.FIELD`` in
        one word names both; the field then leads the remaining words.
        """
        if not words:
            raise CommandError("Which device? Type list to see them.")
        for count in range(len(words), 0, -1):
            text = " ".join(words[:count])
            found = self._lookup(text)
            if found is not None:
                return found, list(words[count:])
        first = words[0]
        if "." in first:
            device, _, field = first.rpartition(".")
            node = self._lookup(device)
            if node is not None and field:
                return node, [field, *words[1:]]
        self._raise_ambiguous(first)
        raise CommandError(f"No device '{first}'. Devices: {self._ids()}. Type list for more.")

    def _lookup(self, text: str) -> Node | None:
        """The device ``text`` names exactly, or by a unique beginning; None if none or several."""
        key = _normal(text)
        if not key:
            return None
        nodes = self.nodes_for()
        for node in nodes:
            if key in (_normal(node.id), _normal(node.name)):
                return node
        matches = self._prefix_matches(key)
        return matches[0] if len(matches) == 1 else None

    def _prefix_matches(self, key: str) -> list[Node]:
        return [
            node
            for node in self.nodes_for()
            if _normal(node.id).startswith(key) or _normal(node.name).startswith(key)
        ]

    def _raise_ambiguous(self, text: str) -> None:
        matches = self._prefix_matches(_normal(text))
        if len(matches) > 1:
            names = ", ".join(n.id for n in matches)
            raise CommandError(f"'{text}' could be {names}. Type more of the name.")

    def _ids(self) -> str:
        ids = [node.id for node in self.nodes_for()]
        shown = ", ".join(ids[:8])
        return shown + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")

    def resolve_field(
        self, node: Node, text: str, *, exact: bool = False, needed: Role = Role.READER
    ) -> FieldSpec | None:
        """The field of ``node`` that ``text`` names (exactly, else by a unique beginning).

        Only the fields open to the sender with ``needed`` count (XEP-0324).
        """
        key = _normal(text)
        fields = self.fields_of(node, needed)
        for spec in fields:
            if key in (_normal(spec.name), _normal(spec.display_name)):
                return spec
        if exact or not key:
            return None
        matches = [s for s in fields if _normal(s.name).startswith(key)]
        return matches[0] if len(matches) == 1 else None

    # --------------------------------------------------------------- commands

    async def _help(self, call: Invocation) -> str:
        if call.args:
            command = self.commands.get(call.args[0].lower())
            if command is not None and call.role >= command.role:
                return f"{command.usage}: {command.summary}. {self._example(command.name)}".strip()
        lines = ["Commands:"]
        for command in self.available(call.role):
            lines.append(f"{BULLET}{command.usage}: {command.summary}")
        lines.append("A device is its id or name, any case; the first letters are enough.")
        return "\n".join(lines)

    def _example(self, name: str) -> str:
        nodes = self.nodes_for()
        if name == "set":
            viewer = _VIEWER.get()
            for node in nodes:
                mine = viewer is None or self.access.allows(viewer, Role.CONTROLLER, node.id)
                writable = self.writable_of(node) if mine else []
                if writable:
                    spec = writable[0]
                    return f"Try: set {node.id} {spec.name} {example_value(spec)}"
        if name == "read" and nodes:
            return f"Try: read {nodes[0].id}"
        return ""

    async def _list(self, call: Invocation) -> str:
        return self.list_reply(call.sender)

    async def _read(self, call: Invocation) -> str:
        if not call.args:
            raise CommandError(
                "Read which device? Try: read " + next(iter(n.id for n in self.nodes_for()), "NAME")
            )
        node, rest = self.resolve_device(call.args)
        fields: frozenset[str] = frozenset()
        if rest:
            spec = self.resolve_field(node, " ".join(rest))
            if spec is None:
                names = ", ".join(s.name for s in self.fields_of(node))
                raise CommandError(f"{node.id} has no field '{' '.join(rest)}'; fields: {names}.")
            fields = frozenset({spec.name})
        return (await self.read_reply(node, fields))[1]

    async def read_reply(
        self, node: Node, fields: frozenset[str] = frozenset(), *, sender: str | None = None
    ) -> tuple[bool, str]:
        """Read ``node`` through the hub for ``sender``; return (success, the words for people).

        On failure the words say why and add the last known values.
        """
        # XEP-0324: only the fields a provisioning server opened are read and shown.
        allowed = self.open_fields(node, sender=sender)
        if allowed is not None:
            fields = (fields or frozenset(s.name for s in node.spec.fields)) & allowed
            if not fields:  # nothing open: never an empty request, which reads all
                return True, format_read(node, [], self.now())
        try:
            values = await self.hub.read(node.id, fields)
        except DriverUnavailable as err:
            return (
                False,
                f"{node.name} is {node.state.value} ({err}).{self._last_known(node, fields)}",
            )
        except DriverError as err:
            return False, f"{node.name} did not answer: {err}.{self._last_known(node, fields)}"
        if not fields:
            values = shown_values(values)
        return True, format_read(node, values, self.now())

    def _last_known(self, node: Node, fields: frozenset[str]) -> str:
        cached = [v for v in shown_values(node.cache.values()) if not fields or v.name in fields]
        if not cached:
            return ""
        now = self.now()
        known = SEPARATOR.join(
            f"{format_field(node.spec.get(v.name), v)} ({ago(v.timestamp, now)})" for v in cached
        )
        return f" Last known: {known}."

    async def _set(self, call: Invocation) -> str:
        if len(call.args) < 2:
            raise CommandError("Set what? " + (self._example("set") or "Type list."))
        node, rest = self.resolve_device(call.args)
        if not self.access.allows(call.sender, Role.CONTROLLER, node.id):
            audit_refused(call.sender, " ".join(("set", *call.args))[:200], "not a controller")
            raise CommandError(f"You may read {node.id} but not control it.")
        spec, raw = self._field_and_value(node, rest)
        done, text = await self.write_reply(node, spec, raw, actor=call.sender)
        if not done:
            raise CommandError(text)
        return text

    async def write_reply(
        self, node: Node, spec: FieldSpec, raw: str, *, actor: str
    ) -> tuple[bool, str]:
        """Write through the hub (audited as ``actor``); return (success, the words for people)."""
        try:
            value = await self.hub.write(node.id, spec.name, raw, actor=actor)
        except InvalidValue as err:
            reason = str(err).removeprefix(f"{spec.name}: ")
            return False, (
                f"Cannot set {node.id} {spec.name} to '{raw}': {reason}. "
                f"Try: set {node.id} {spec.name} {example_value(spec)}"
            )
        except ControlError as err:
            hint = self._hint(node, actor)
            return False, f"{node.id} {spec.name} cannot be set: {err}. {hint}"
        except DriverUnavailable as err:
            return False, f"{node.name} is {node.state.value} ({err}); not changed."
        except (DriverError, NodeNotFound) as err:
            return False, f"{node.name} was not changed: {err}."
        return True, f"{node.name}: {spec.name} {format_value(spec, value)}"

    def _field_and_value(self, node: Node, rest: Sequence[str]) -> tuple[FieldSpec, str]:
        # XEP-0324: only the parameters a provisioning server opened count; any
        # other field gets the same answer as one the device does not have.
        writable = self.writable_of(node)
        if not rest:
            raise CommandError(f"Set {node.id} to what? {self._hint(node)}")
        if len(rest) == 1:
            # "set porch-light on": the device has one thing to set.  Only an
            # exact field name counts here, or "on" would be a prefix of "online".
            exact = self.resolve_field(node, rest[0], exact=True, needed=Role.CONTROLLER)
            if exact is None and len(writable) == 1:
                return writable[0], rest[0]
            if exact is not None:
                raise CommandError(f"Set {node.id} {exact.name} to what? {self._hint(node)}")
            raise CommandError(self._no_field(node, rest[0]))
        spec = self.resolve_field(node, rest[0], needed=Role.CONTROLLER)
        if spec is None:
            # "set display hello world": text for the one writable text field;
            # any other type cannot take several words, so the first was a field.
            if len(writable) == 1 and writable[0].type is FieldType.STRING:
                return writable[0], " ".join(rest)
            raise CommandError(self._no_field(node, rest[0]))
        if not spec.writable:
            raise CommandError(
                f"{node.id} {spec.name} is read-only ({self._writable_names(node)}). "
                + self._hint(node)
            )
        return spec, " ".join(rest[1:])

    def _no_field(self, node: Node, text: str) -> str:
        names = ", ".join(s.name for s in self.writable_of(node)) or "none can be set"
        return f"{node.id} has no field '{text}'; fields: {names}. {self._hint(node)}"

    def _writable_names(self, node: Node) -> str:
        names = [s.name for s in self.writable_of(node)]
        return "writable: " + ", ".join(names) if names else "it has nothing to set"

    def _hint(self, node: Node, sender: str | None = None) -> str:
        writable = self.writable_of(node, sender)
        if not writable:
            return f"Try: read {node.id}"
        spec = writable[0]
        return f"Try: set {node.id} {spec.name} {example_value(spec)}"

    async def _coming_soon(self, call: Invocation) -> str:
        return f"{call.word} is coming soon: this hubd cannot send events to chat yet."
