"""The device commands: ``list``, ``read <device> [<field>]``, ``set <device> <field> <value>``.

They reach the devices only through :meth:`Hub.read <hubd.core.hub.Hub.read>`
and :meth:`Hub.write <hubd.core.hub.Hub.write>` (with the sender's full JID as
the audited actor), the same path as the machine interface.  ``read_reply``
and ``write_reply`` are also the ad-hoc forms' words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec, FieldType
from hubd.core.node import Node
from hubd.errors import (
    ControlError,
    DriverError,
    DriverUnavailable,
    InvalidValue,
    NodeNotFound,
)
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.lookup import DeviceLookup
from hubd.people.wording import (
    SEPARATOR,
    ago,
    example_value,
    format_field,
    format_list,
    format_read,
    format_value,
    shown_values,
)

if TYPE_CHECKING:  # imported where remotes: is configured (memory of a hub without)
    from hubd.people.remote_commands import RemoteDeviceCommands


class DeviceCommands:
    """Reads and writes for people, worded for a phone screen; every error says what to type."""

    def __init__(
        self,
        hub: Hub,
        access: AccessPolicy,
        lookup: DeviceLookup,
        now: Callable[[], datetime],
        remote: RemoteDeviceCommands | None = None,
    ) -> None:
        self.hub = hub
        self.access = access
        self.lookup = lookup
        self.now = now
        #: Other hubs' devices (remotes:), typed garage/door.
        self.remote = remote

    def commands(self) -> list[Command]:
        """The table entries of ``list``, ``read`` and ``set``."""
        return [
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
                example=self._read_example,
            ),
            Command(
                name="set",
                usage="set <device> <field> <value>",
                summary="control a device",
                role=Role.CONTROLLER,
                run=self._set,
                controls=True,
                example=self._set_example,
            ),
        ]

    def list_reply(self, sender: str | None = None) -> str:
        """The ``list`` reply for ``sender``: its devices, and of each only its fields."""
        return format_list(
            self.lookup.nodes_for(sender),
            lambda n: self.lookup.open_fields(n, sender=sender),
        )

    def _read_example(self) -> str:
        nodes = self.lookup.nodes_for()
        return f"Try: read {nodes[0].id}" if nodes else ""

    def _set_example(self) -> str:
        viewer = self.lookup.viewer()
        for node in self.lookup.nodes_for():
            mine = viewer is None or self.access.allows(viewer, Role.CONTROLLER, node.id)
            writable = self.lookup.writable_of(node) if mine else []
            if writable:
                spec = writable[0]
                return f"Try: set {node.id} {spec.name} {example_value(spec)}"
        return ""

    async def _list(self, call: Invocation) -> str:
        own = self.list_reply(call.sender)
        if self.remote is None:
            return own
        # Grouped by source: this hub's devices first, then each remote's under its id.
        return "\n".join([own, *await self.remote.list_sections(call.sender)])

    async def _read(self, call: Invocation) -> str:
        if not call.args:
            raise CommandError(
                "Read which device? Try: read "
                + next(iter(n.id for n in self.lookup.nodes_for()), "NAME")
            )
        if self.remote is not None and self.remote.names_remote(call.args):
            return await self.remote.read(call)
        node, rest = self.lookup.resolve_device(call.args)
        fields: frozenset[str] = frozenset()
        if rest:
            spec = self.lookup.resolve_field(node, " ".join(rest))
            if spec is None:
                names = ", ".join(s.name for s in self.lookup.fields_of(node))
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
        allowed = self.lookup.open_fields(node, sender=sender)
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
            raise CommandError("Set what? " + (self._set_example() or "Type list."))
        if self.remote is not None and self.remote.names_remote(call.args):
            return await self.remote.set(call)
        node, rest = self.lookup.resolve_device(call.args)
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
        writable = self.lookup.writable_of(node)
        if not rest:
            raise CommandError(f"Set {node.id} to what? {self._hint(node)}")
        if len(rest) == 1:
            # "set porch-light on": the device has one thing to set.  Only an
            # exact field name counts here, or "on" would be a prefix of "online".
            exact = self.lookup.resolve_field(node, rest[0], exact=True, needed=Role.CONTROLLER)
            if exact is None and len(writable) == 1:
                return writable[0], rest[0]
            if exact is not None:
                raise CommandError(f"Set {node.id} {exact.name} to what? {self._hint(node)}")
            raise CommandError(self._no_field(node, rest[0]))
        spec = self.lookup.resolve_field(node, rest[0], needed=Role.CONTROLLER)
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
        names = ", ".join(s.name for s in self.lookup.writable_of(node)) or "none can be set"
        return f"{node.id} has no field '{text}'; fields: {names}. {self._hint(node)}"

    def _writable_names(self, node: Node) -> str:
        names = [s.name for s in self.lookup.writable_of(node)]
        return "writable: " + ", ".join(names) if names else "it has nothing to set"

    def _hint(self, node: Node, sender: str | None = None) -> str:
        writable = self.lookup.writable_of(node, sender)
        if not writable:
            return f"Try: read {node.id}"
        spec = writable[0]
        return f"Try: set {node.id} {spec.name} {example_value(spec)}"
