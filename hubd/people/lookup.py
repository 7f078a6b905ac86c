"""Which device and field a person means, among those that person may see.

Input is forgiving: a device by id or name (any case; spaces, ``-`` and ``_``
alike) or a unique beginning of either, ``porch-light.state`` for device and
field.  Only the devices and fields open to the sender count (the access
lists, and XEP-0324 narrowing), so a lookup never tells of a device the sender
may not read.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hubd.core.access import AccessPolicy, Role
from hubd.core.hub import Hub
from hubd.core.model import FieldSpec
from hubd.core.node import Node
from hubd.people.command import CommandError

_SPACES = re.compile(r"[\s_-]+")

# The sender of the command being handled.  Lookups and listings show only the
# devices that sender may read; a context variable (each command runs in its own
# task) saves threading the sender through every helper.
_VIEWER: contextvars.ContextVar[str | None] = contextvars.ContextVar("viewer", default=None)


def _normal(text: str) -> str:
    """Compare names the way people type them: any case, spaces, ``-`` and ``_`` alike."""
    return _SPACES.sub("-", text.strip().lower())


class DeviceLookup:
    """Finds devices and fields by the words people type, as the current sender sees them."""

    def __init__(self, hub: Hub, access: AccessPolicy) -> None:
        self.hub = hub
        self.access = access

    @staticmethod
    @contextmanager
    def viewing(sender: str) -> Iterator[None]:
        """Look up as ``sender`` (a full JID) until the block ends."""
        token = _VIEWER.set(sender)
        try:
            yield
        finally:
            _VIEWER.reset(token)

    @staticmethod
    def viewer() -> str | None:
        """The sender being answered; None for an internal caller."""
        return _VIEWER.get()

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

    def maybe_device(self, words: Sequence[str]) -> Node | None:
        try:
            node, _ = self.resolve_device(words)
        except CommandError:
            return None
        return node

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
