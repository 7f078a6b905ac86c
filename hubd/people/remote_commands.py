"""Chat on other hubs' devices (``remotes:``): ``read garage/door``, ``set garage/light on``.

A remote's device is typed ``<remote id>/<device>`` (the device as the remote
names it: its id or name, any case, or a unique beginning).  This hub checks
its own lists first (the person must be allowed ``garage/door`` here:
hub-wide or through the remote's own ``access:``); the remote then checks its
grant to this hub, and its refusal comes back in its own words.  ``list``
shows this hub's devices, then each remote's under its id.

No XMPP here: the requests themselves go through a :class:`RemoteDevices`
port, which ``hubd/xmpp/remote_people.py`` implements.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from hubd.core.access import AccessPolicy, Role, audit_refused
from hubd.core.model import Value
from hubd.core.remote_settings import remote_node_key
from hubd.core.remote_source import RemoteNode, RemoteSource, RemoteSources
from hubd.people.command import CommandError, Invocation
from hubd.people.wording import BULLET, SEPARATOR, ago, format_value


@dataclass(frozen=True, slots=True)
class RemoteValue:
    """One value a remote hub gave, with its unit."""

    name: str
    value: Value
    timestamp: datetime
    unit: str | None = None


@dataclass(slots=True)
class RemoteReading:
    """What a remote said of one of its devices: values, or why it could not."""

    values: list[RemoteValue] = field(default_factory=list)
    error: str | None = None


class RemoteDevices(Protocol):
    """The requests to remote hubs that the chat commands need (XMPP side)."""

    async def read(
        self, source: RemoteSource, node_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RemoteReading]:
        """A momentary readout of ``node_ids`` (``fields`` only, or all), by node id."""
        ...

    async def write(
        self, source: RemoteSource, node_id: str, field: str | None, raw: str, actor: str
    ) -> str:
        """Set ``field`` (None: the device's only writable one); the words for people.

        Raises :class:`~hubd.people.command.CommandError` with the remote's reason.
        """
        ...


def _simple(text: str) -> str:
    return text.lower().replace(" ", "-").replace("_", "-")


class RemoteDeviceCommands:
    """``read``/``set``/``list`` for devices of remote hubs."""

    def __init__(
        self,
        sources: RemoteSources,
        access: AccessPolicy,
        devices: RemoteDevices,
        now: Callable[[], datetime],
    ) -> None:
        self.sources = sources
        self.access = access
        self.devices = devices
        self.now = now

    def names_remote(self, args: Sequence[str]) -> bool:
        """True when the first word is ``<remote id>/...``."""
        if not args or "/" not in args[0]:
            return False
        return args[0].split("/", 1)[0].lower() in self.sources

    def resolve(self, sender: str, word: str) -> tuple[RemoteSource, RemoteNode]:
        """The remote and its device ``word`` names (``garage/door``), as ``sender`` sees them."""
        return self._resolve(sender, word)

    def _resolve(self, sender: str, word: str) -> tuple[RemoteSource, RemoteNode]:
        source_id, _, wanted = word.partition("/")
        source = self.sources.get(source_id.lower())
        assert source is not None  # names_remote() said so
        readable = [
            n
            for n in source.nodes()
            if self.access.allows(sender, Role.READER, remote_node_key(source.id, n.node_id))
        ]
        key = _simple(wanted)
        exact = [n for n in readable if key in (_simple(n.node_id), _simple(n.name))]
        found = exact or [n for n in readable if _simple(n.node_id).startswith(key)]
        if len(found) == 1 and key:
            return source, found[0]
        names = ", ".join(f"{source.id}/{n.node_id}" for n in readable) or "none you may see"
        if len(found) > 1 and key:
            raise CommandError(f"'{word}' could be {', '.join(n.node_id for n in found)}.")
        raise CommandError(f"{source.id} has no device '{wanted}'; devices: {names}.")

    async def read(self, call: Invocation) -> str:
        """``read garage/door [<field>]``."""
        source, node = self._resolve(call.sender, call.args[0])
        label = f"{source.id}/{node.node_id}"
        if not source.online:
            return f"{label} is offline ({source.id}: {source.reason})."
        fields = [" ".join(call.args[1:])] if len(call.args) > 1 else []
        reading = (await self.devices.read(source, [node.node_id], fields)).get(node.node_id)
        self._narrow(call.sender, label, reading)
        if reading is not None and not fields:  # "online" is said separately, as here
            reading.values = [v for v in reading.values if v.name != "online"]
        if reading is None or (reading.error is None and not reading.values):
            if fields:
                return f"{label} has no field '{fields[0]}'."
            return f"{node.name} ({source.id}): no values yet."
        if reading.error is not None:
            return f"{label} did not answer: {reading.error}."
        return _format_read(f"{node.name} ({source.id})", reading.values, self.now())

    async def set(self, call: Invocation) -> str:
        """``set garage/light [<field>] <value>``."""
        source, node = self._resolve(call.sender, call.args[0])
        label = f"{source.id}/{node.node_id}"
        if not self.access.allows(call.sender, Role.CONTROLLER, label):
            audit_refused(call.sender, " ".join(("set", *call.args))[:200], "not a controller")
            raise CommandError(f"You may read {label} but not control it.")
        if not source.online:
            raise CommandError(f"{label} is offline ({source.id}: {source.reason}); not changed.")
        rest = call.args[1:]
        if not rest:
            raise CommandError(f"Set {label} to what? Try: set {label} on")
        field_name = rest[0] if len(rest) > 1 else None
        raw = " ".join(rest[1:]) if len(rest) > 1 else rest[0]
        return await self.devices.write(source, node.node_id, field_name, raw, call.sender)

    def devices_for(self, sender: str, needed: Role = Role.READER) -> list[tuple[str, str]]:
        """(``garage/door``, a label) of each remote device ``sender`` holds ``needed`` on.

        For the ad-hoc forms' pickers; with CONTROLLER, only those the remote says
        can be controlled.
        """
        out = []
        for source in self.sources:
            for node in source.nodes():
                key = remote_node_key(source.id, node.node_id)
                if needed >= Role.CONTROLLER and not node.controllable:
                    continue
                if self.access.allows(sender, needed, key):
                    label = key if node.name == node.node_id else f"{key} ({node.name})"
                    out.append((key, label))
        return out

    async def list_sections(self, sender: str) -> list[str]:
        """One section per remote ``sender`` may read: its devices and their latest values."""
        shown: list[tuple[RemoteSource, list[RemoteNode]]] = []
        for source in self.sources:
            nodes = [
                n
                for n in source.nodes()
                if self.access.allows(sender, Role.READER, remote_node_key(source.id, n.node_id))
            ]
            if nodes:
                shown.append((source, nodes))
        # Every remote at once: one slow hub holds up no other.
        readings = await asyncio.gather(*(self._values(s, nodes) for s, nodes in shown))
        for (source, _), by_node in zip(shown, readings, strict=True):
            for node_id, reading in by_node.items():
                self._narrow(sender, remote_node_key(source.id, node_id), reading)
        return [
            _format_section(source, nodes, values)
            for (source, nodes), values in zip(shown, readings, strict=True)
        ]

    def _narrow(self, sender: str, key: str, reading: RemoteReading | None) -> None:
        """Keep the values of the fields a provisioning server left ``sender`` (XEP-0324)."""
        allowed = self.access.fields_for(sender, key, Role.READER)
        if reading is not None and allowed is not None:
            reading.values = [v for v in reading.values if v.name in allowed]

    async def _values(
        self, source: RemoteSource, nodes: list[RemoteNode]
    ) -> dict[str, RemoteReading]:
        readable = [n.node_id for n in nodes if n.readable]
        if not source.online or not readable:
            return {}
        return await self.devices.read(source, readable, [])


def _value_text(value: RemoteValue) -> str:
    text = format_value(None, value.value)
    if value.unit and not isinstance(value.value, bool):
        text += value.unit if value.unit == "%" else f" {value.unit}"
    return f"{value.name} {text}"


def _format_read(title: str, values: Sequence[RemoteValue], now: datetime) -> str:
    if len(values) == 1:
        return f"{title}: {_value_text(values[0])} ({ago(values[0].timestamp, now)})"
    newest = max(v.timestamp for v in values)
    lines = [f"{title} ({ago(newest, now)}):"]
    lines.extend(BULLET + _value_text(v) for v in values)
    return "\n".join(lines)


def _format_section(
    source: RemoteSource, nodes: list[RemoteNode], readings: dict[str, RemoteReading]
) -> str:
    count = f"{len(nodes)} device{'s' if len(nodes) != 1 else ''}"
    if not source.online:
        return f"{source.id}: {count}, offline ({source.reason})."
    lines = [f"{source.id}: {count}:"]
    for node in nodes:
        label = node.node_id if node.name == node.node_id else f"{node.node_id} ({node.name})"
        reading = readings.get(node.node_id)
        if reading is None or (not reading.values and reading.error is None):
            summary = "no values yet"
        elif reading.error is not None:
            summary = f"no answer ({reading.error})"
        else:
            summary = SEPARATOR.join(_value_text(v) for v in reading.values if v.name != "online")
        lines.append(f"{BULLET}{source.id}/{label}: {summary}")
    return "\n".join(lines)
