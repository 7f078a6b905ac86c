"""``watch``, ``unwatch``, ``watching``: event subscriptions for people, by chat.

A watch is an ordinary event subscription on the ``chat`` channel: the same
engine, store and delivery guarantees as the machine interface, but each event
arrives as a line of text.  Conditions people type::

    watch front-door                      any change of any field
    watch weather temperature             any change of that field
    watch weather temperature > 25        when it rises above 25 (once per crossing)
    watch weather temperature < 10        when it falls below 10
    watch weather temperature changes by 0.5
    watch garage/door                     a remote hub's device (remotes:), the same way

A remote's device is watched on its proxy in the engine (hubd/core/remote_nodes.py);
``on_remote`` then brings this hub's own subscription at the remote in step.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal, InvalidOperation

from hubd.core.access import Role
from hubd.core.model import FieldType, FieldValue
from hubd.core.node import Node
from hubd.core.remote_settings import remote_node_key
from hubd.events.engine import EventEngine
from hubd.events.subscriptions import FieldRule, SubscriptionSpec
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.commands import ChatCommands
from hubd.people.wording import format_field

CHAT = "chat"  # events for a person, as chat lines
ROOM = "room"  # events for a group-chat room, as groupchat lines
_NUMERIC = (FieldType.NUMERIC, FieldType.INT, FieldType.LONG)
_COMPARE = re.compile(r"^(?P<op>[<>])\s*(?P<num>[-+]?\d+(?:\.\d+)?)$")


def register_watch(
    commands: ChatCommands,
    engine: EventEngine,
    on_remote: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Add ``watch``, ``unwatch`` and ``watching`` to ``commands``, backed by ``engine``."""
    watch = _Watch(commands, engine, on_remote)
    commands.register(
        Command(
            name="watch",
            usage="watch <device> [<field>] [> 25 | < 10 | changes by 0.5]",
            summary="a message when a value changes",
            role=Role.READER,
            run=watch.watch,
        )
    )
    commands.register(
        Command(
            name="unwatch",
            usage="unwatch <device>",
            summary="stop watching a device",
            role=Role.READER,
            run=watch.unwatch,
        )
    )
    commands.register(
        Command(
            name="watching",
            usage="watching",
            summary="what you watch",
            role=Role.READER,
            run=watch.watching,
        )
    )


def describe_rules(rules: Sequence[FieldRule]) -> str:
    """The condition of a watch, for people."""
    if not rules:
        return "any change"
    parts = []
    for rule in rules:
        if rule.above is not None:
            parts.append(f"{rule.name} > {rule.above}")
        elif rule.below is not None:
            parts.append(f"{rule.name} < {rule.below}")
        elif rule.changed_up is not None:
            parts.append(f"{rule.name} changes by {rule.changed_up}")
        else:
            parts.append(f"{rule.name}: any change")
    return ", ".join(parts)


def event_text(node: Node, values: Sequence[FieldValue]) -> str:
    """One watched event as a line: ``Front door: state on``."""
    shown = ", ".join(format_field(node.spec.get(v.name), v) for v in values)
    return f"{node.name}: {shown}"


class _Watch:
    def __init__(
        self,
        commands: ChatCommands,
        engine: EventEngine,
        on_remote: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.commands = commands
        self.engine = engine
        self.on_remote = on_remote

    def _device(self, call: Invocation) -> tuple[Node, list[str], bool]:
        """The node named first (a remote's: its proxy), the words after it, remote or not."""
        remote = self.commands.devices.remote
        if self.on_remote is None or remote is None or not remote.names_remote(call.args):
            node, rest = self.commands.lookup.resolve_device(list(call.args))
            return node, rest, False
        source, found = remote.resolve(call.sender, call.args[0])
        proxy = self.engine.nodes[remote_node_key(source.id, found.node_id)]
        return proxy, list(call.args[1:]), True

    async def watch(self, call: Invocation) -> str:
        node, rest, remote = self._device(call)
        rules = self._remote_rules(node, rest) if remote else self._rules(node, rest)
        bare = call.sender.split("/", 1)[0]
        await self.engine.subscribe(
            SubscriptionSpec(
                subscriber=bare,
                target=call.sender,
                node_id=node.id,
                seqnr=0,
                rules=tuple(rules),
                channel=CHAT,
            )
        )
        if remote and self.on_remote is not None:
            await self.on_remote()  # the remote's events flow before the answer
        return f"Watching {node.name} ({describe_rules(rules)}). Type unwatch {node.id} to stop."

    def _remote_rules(self, node: Node, words: list[str]) -> list[FieldRule]:
        """Rules on a remote's field: its type is known here once a value came."""
        if not words or node.spec.get(words[0].lower()) is not None:
            return self._rules(node, words) if words else []
        return _condition(node, words[0].lower(), None, " ".join(words[1:]))

    def _rules(self, node: Node, words: list[str]) -> list[FieldRule]:
        if not words:
            return []
        spec = self.commands.lookup.resolve_field(node, words[0])
        if spec is None:
            # Only the fields open to the sender (XEP-0324 may narrow them).
            open_fields = self.commands.lookup.fields_of(node)
            names = ", ".join(s.name for s in open_fields)
            try_line = f" Try: watch {node.id} {open_fields[0].name}" if open_fields else ""
            raise CommandError(f"{node.id} has no field '{words[0]}'; fields: {names}.{try_line}")
        return _condition(node, spec.name, spec.type in _NUMERIC, " ".join(words[1:]))

    async def unwatch(self, call: Invocation) -> str:
        node, _, remote = self._device(call)
        bare = call.sender.split("/", 1)[0]
        ended = await self.engine.unsubscribe(bare, node.id, CHAT)
        if remote and self.on_remote is not None:
            await self.on_remote()  # the last watcher gone: unsubscribed there too
        if not ended:
            return f"You were not watching {node.name}. Type watching to see your watches."
        return f"Stopped watching {node.name}."

    async def watching(self, call: Invocation) -> str:
        bare = call.sender.split("/", 1)[0]
        subs = self.engine.subscriptions_of(bare, CHAT)
        if not subs:
            return "You watch nothing. Try: watch <device>"
        lines = []
        for sub in subs:
            node = self.engine.nodes.get(sub.spec.node_id)
            name = node.name if node is not None else sub.spec.node_id
            lines.append(f"- {name}: {describe_rules(sub.spec.rules)}")
        return "You watch:\n" + "\n".join(lines)


def _condition(node: Node, name: str, numeric: bool | None, words: str) -> list[FieldRule]:
    """The rule for ``watch <device> <field> <condition>``; ``numeric`` None: not known yet."""
    condition = words.strip().lower()
    if not condition or condition in ("changes", "change"):
        return [FieldRule(name)]
    if numeric is False:
        raise CommandError(f"{name} is not a number: watch {node.id} {name} (any change).")
    match = _COMPARE.match(condition)
    if match is not None:
        level = Decimal(match["num"])
        if match["op"] == ">":
            return [FieldRule(name, above=level)]
        return [FieldRule(name, below=level)]
    by = condition.removeprefix("changes by").removeprefix("change by").strip()
    if by != condition:
        try:
            step = Decimal(by)
        except InvalidOperation:
            step = Decimal(0)
        if step > 0:
            return [FieldRule(name, changed_up=step, changed_down=step)]
    raise CommandError(
        f"I don't understand '{condition}'. "
        f"Try: watch {node.id} {name} > 25, < 10, or changes by 0.5"
    )
