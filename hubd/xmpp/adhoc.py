"""XEP-0050 ad-hoc commands: Read a device, Set a device, Hub status.

Clients with a commands menu (Gajim, Psi, Profanity's ``/cmd``) show these.
Every command is a single stage (Profanity runs no other kind, digest §7.1):
``execute`` answers with one form (``status='executing'``, the only action
``complete``), the submitted form completes the command with a note (``info``
when done, ``error`` when not: the XEP's rule for failed completions) and
nothing else: a result form would open as an empty form window in
Profanity, and every client shows the note.  Devices are picked from
``list-single`` fields (value: the node id, label: its name); Set picks ``device.field`` among the
writable fields of every device, so one stage is enough.

The work is done by :class:`hubd.people.commands.ChatCommands` (the same reads and
audited writes as chat and the machine interface); this module is the XMPP
side, on slixmpp's ``xep_0050`` plugin, with three additions the plugin lacks:

* per-sender command lists: disco#items of the commands node lists only what
  the requester may run (a reader does not see Set, a stranger sees nothing),
  and disco#info of a command node is ``forbidden`` to those who may not;
* every command IQ is checked before the plugin sees it: strangers and
  readers running Set get ``forbidden``; a session may only be continued by
  the full JID that started it, and an unknown session is ``bad-sessionid``
  (the plugin would silently start a new one);
* sessions are kept in a bounded store with an expiry, because the plugin
  keeps every session a client opened and never completed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import XMPPError
from slixmpp.plugins.xep_0030.stanza.info import DiscoInfo
from slixmpp.plugins.xep_0030.stanza.items import DiscoItems
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from hubd.core.access import AccessPolicy, Role
from hubd.core.node import Node
from hubd.errors import AccessDenied, HubdError
from hubd.people.command import CommandError, Invocation
from hubd.people.commands import COMMAND_TIMEOUT, ChatCommands
from hubd.people.wording import device_label, example_value, format_value
from hubd.xmpp.errors import ErrorCondition, condition_for
from hubd.xmpp.stanzas import payload as payload_of
from hubd.xmpp.stanzas import send_error

_LOGGER = logging.getLogger(__name__)

NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Access denied.")
NOT_FOUND = ErrorCondition("cancel", "item-not-found", "No such command.")
BAD_SESSION = ErrorCondition("modify", "bad-request", "Unknown or expired session.")

#: Sessions kept at once (the oldest is dropped) and how long one lives, in seconds.
MAX_SESSIONS = 256
SESSION_LIFETIME = 600.0

Session = dict[str, Any]
Start = Callable[[JID, Session], Awaitable[Session]]


@dataclass(frozen=True, slots=True)
class AdhocCommand:
    """One ad-hoc command: its node, its name in menus, who may run it, its first stage."""

    node: str
    name: str
    role: Role
    start: Start


class SessionStore(dict[str, Session]):
    """The plugin's session table, bounded in size and age."""

    def __init__(
        self,
        limit: int = MAX_SESSIONS,
        lifetime: float = SESSION_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.limit = limit
        self.lifetime = lifetime
        self.clock = clock
        self._born: OrderedDict[str, float] = OrderedDict()

    def __setitem__(self, key: str, value: Session) -> None:
        """Store a session; forget expired ones and the oldest beyond the limit."""
        now = self.clock()
        super().__setitem__(key, value)
        self._born.setdefault(key, now)
        for old, born in list(self._born.items()):
            if now - born <= self.lifetime and len(self._born) <= self.limit:
                break
            self._born.pop(old)
            super().pop(old, None)

    def __delitem__(self, key: str) -> None:
        """Forget a session."""
        super().__delitem__(key)
        self._born.pop(key, None)

    def get(self, key: str, default: Session | None = None) -> Session | None:  # type: ignore[override]
        """The session ``key``, unless it has expired."""
        born = self._born.get(key)
        if born is None or self.clock() - born > self.lifetime:
            return default
        return super().get(key, default)


class AdhocService:
    """Offers the hub's operations as XEP-0050 commands, per requester."""

    def __init__(self, xmpp: ClientXMPP, commands: ChatCommands, access: AccessPolicy) -> None:
        self.xmpp = xmpp
        self.commands = commands
        self.hub = commands.hub
        self.access = access
        self.table: dict[str, AdhocCommand] = {}
        plugin: Any = xmpp.plugin["xep_0050"]  # partly untyped
        self.sessions = SessionStore()
        plugin.set_backend(self.sessions)
        # The plugin finds handlers by (our JID, node); ours answers by node alone,
        # so a resource the server changes at bind time does not lose the commands.
        plugin.api.register(self._get_command, "get_command")
        # Our handler vets every command IQ, then hands it to the plugin's workflow.
        if not xmpp.remove_handler("Ad-Hoc Execute"):
            # Left in place, the plugin's handler would run commands unvetted.
            raise RuntimeError(
                "slixmpp's xep_0050 handler was not found: update hubd/xmpp/adhoc.py"
            )
        xmpp.register_handler(
            Callback("hubd ad-hoc", StanzaPath("iq@type=set/command"), self._on_command)
        )
        xmpp.add_event_handler("session_bind", self._on_session_bind)
        for command in (
            AdhocCommand("read", "Read a device", Role.READER, self._read_form),
            AdhocCommand("set", "Set a device", Role.CONTROLLER, self._set_form),
            AdhocCommand("status", "Hub status", Role.READER, self._status),
        ):
            self.register(command)

    def enable_watch(self) -> None:
        """Offer "Watch a device" (when event subscriptions are available)."""
        self.register(AdhocCommand("watch", "Watch a device", Role.READER, self._watch_form))

    async def _watch_form(self, requester: JID, session: Session) -> Session:
        nodes = self.commands.lookup.nodes_for(str(requester))
        remote = self.commands.devices.remote
        # Other hubs' devices (remotes:) after this hub's; the chat command watches them.
        others = [] if remote is None else remote.devices_for(str(requester))
        if not nodes and not others:
            return self._done(session, "No devices are configured.")
        form = self._form(
            "Watch a device", "Pick a device; each change then arrives as a chat message."
        )
        _add_device_picker(form, nodes, others)
        form.add_field(
            var="condition",
            ftype="text-single",
            label="Field and condition (optional)",
            desc="empty: any change; or e.g. temperature > 25, temperature changes by 0.5",
        )
        return self._ask(session, form, self._watch_submit)

    async def _watch_submit(self, payload: Any, session: Session) -> Session:
        values = self._submitted(payload)
        device = str(values.get("device") or "").strip()
        condition = str(values.get("condition") or "").strip()
        # The chat command does the parsing and the access checks: one path for both.
        reply = await self.commands.handle(str(session["from"]), f"watch {device} {condition}")
        return self._done(session, reply, ok=reply.startswith("Watching"))

    def register(self, command: AdhocCommand) -> None:
        """Offer ``command`` (replacing one on the same node)."""
        self.table[command.node] = command

    def visible(self, role: Role) -> list[AdhocCommand]:
        """The commands ``role`` may run, in table order."""
        return [c for c in self.table.values() if role >= c.role > Role.STRANGER]

    # ------------------------------------------------------------- discovery

    def _on_session_bind(self, jid: Any) -> None:
        disco = self.xmpp.plugin["xep_0030"]
        me = self.xmpp.boundjid
        disco.api.register(self._disco_items, "get_items", me, NS_COMMANDS)
        disco.api.register(self._disco_info, "get_info", me, NS_COMMANDS)
        for node in self.table:
            disco.api.register(self._disco_info, "get_info", me, node)

    def _disco_items(self, jid: Any, node: Any, ifrom: Any, args: Any) -> DiscoItems:
        items = DiscoItems()
        items["node"] = NS_COMMANDS
        role = self.access.best_role(str(ifrom))
        for command in self.visible(role):
            items.add_item(self.xmpp.boundjid, node=command.node, name=command.name)
        return items

    def _disco_info(self, jid: Any, node: Any, ifrom: Any, args: Any) -> DiscoInfo:
        info = DiscoInfo()
        if node == NS_COMMANDS:
            info.add_identity("automation", "command-list", name="Ad-hoc commands")
            return info
        command = self.table.get(node)
        if command is None or self.access.best_role(str(ifrom)) < command.role:
            raise XMPPError("forbidden", etype="cancel")
        info.add_identity("automation", "command-node", name=command.name)
        info.add_feature(NS_COMMANDS)
        info.add_feature(NS_DATA)
        return info

    # ------------------------------------------------------------- execution

    def _on_command(self, iq: Any) -> None:
        requester: JID = iq["from"]
        node = iq["command"]["node"]
        try:
            self.access.admit(str(requester), Role.READER, payload_of(iq, "{" + NS_COMMANDS + "}"))
        except AccessDenied:
            send_error(iq, FORBIDDEN)  # strangers learn nothing, not even the command list
            return
        except HubdError as err:  # over a rate or size limit
            send_error(iq, condition_for(err))
            return
        # The strongest role anywhere opens a command; each device is checked on its own.
        role = self.access.best_role(str(requester))
        command = self.table.get(node)
        if command is None:
            send_error(iq, NOT_FOUND)
            return
        if role < command.role:
            _LOGGER.info("refused ad-hoc command %s to %s (role %s)", node, requester, role.name)
            send_error(iq, FORBIDDEN)
            return
        sessionid = iq["command"]["sessionid"]
        if sessionid:
            session = self.sessions.get(sessionid)
            if session is None or session["from"] != requester:
                bad = Element("{" + NS_COMMANDS + "}bad-sessionid")
                send_error(iq, BAD_SESSION, inside=[bad])
                return
        self.xmpp.event("command", iq)

    def _get_command(self, jid: Any, node: Any, ifrom: Any, args: Any) -> Any:
        command = self.table.get(node)
        if command is None:
            return None
        return (command.name, self._starter(command), None, 0)

    def _starter(self, command: AdhocCommand) -> Callable[[Any, Session], Awaitable[Session]]:
        async def start(iq: Any, session: Session) -> Session:
            return await command.start(iq["from"], session)

        return start

    def _form(self, title: str, instructions: str = "", ftype: str = "form") -> Any:
        forms: Any = self.xmpp.plugin["xep_0004"]  # slixmpp's forms are untyped
        return forms.make_form(ftype=ftype, title=title, instructions=instructions)

    @staticmethod
    def _done(session: Session, note: str, *, ok: bool = True, payload: Any = None) -> Session:
        session["payload"] = payload
        session["notes"] = [("info" if ok else "error", note)]
        session["next"] = None
        session["has_next"] = False
        return session

    @staticmethod
    def _ask(session: Session, form: Any, submit: Callable[[Any, Session], Any]) -> Session:
        session["payload"] = form
        session["next"] = submit
        session["has_next"] = False  # single stage: the only action is "complete"
        session["notes"] = None
        return session

    @staticmethod
    def _submitted(payload: Any) -> dict[str, Any]:
        forms = payload if isinstance(payload, list) else [payload]
        for form in forms:
            if getattr(form, "plugin_attrib", None) == "form":
                values: dict[str, Any] = form.get_values()
                return values
        return {}

    async def _read_form(self, requester: JID, session: Session) -> Session:
        nodes = self.commands.lookup.nodes_for(str(requester))
        remote = self.commands.devices.remote
        others = [] if remote is None else remote.devices_for(str(requester))
        if not nodes and not others:
            return self._done(session, "No devices are configured.")
        form = self._form("Read a device", "Pick a device to read now.")
        _add_device_picker(form, nodes, others)
        return self._ask(session, form, self._read_submit)

    async def _remote(self, session: Session, word: str, args: tuple[str, ...]) -> Session:
        """``read``/``set`` of another hub's device (remotes:), worded as in chat."""
        remote = self.commands.devices.remote
        assert remote is not None  # the caller checked names_remote()
        sender = str(session["from"])
        call = Invocation(sender, self.access.best_role(sender), word, args)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                run = remote.read if word == "read" else remote.set
                return self._done(session, await run(call))
        except CommandError as err:
            return self._done(session, str(err), ok=False)
        except TimeoutError:
            return self._done(session, f"{args[0]} did not answer in time.", ok=False)

    async def _read_submit(self, payload: Any, session: Session) -> Session:
        node_id = str(self._submitted(payload).get("device") or "")
        remote = self.commands.devices.remote
        if remote is not None and remote.names_remote([node_id]):
            return await self._remote(session, "read", (node_id,))
        node = self.hub.nodes.get(node_id)
        if node is None or not self.access.allows(str(session["from"]), Role.READER, node_id):
            return self._done(session, f"No device '{node_id}'. Pick one from the list.", ok=False)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                ok, text = await self.commands.devices.read_reply(node, sender=str(session["from"]))
        except TimeoutError:
            return self._done(session, f"{node.name} did not answer in time.", ok=False)
        return self._done(session, text, ok=ok)

    async def _set_form(self, requester: JID, session: Session) -> Session:
        options = []
        for node in self.access.visible(str(requester), self.hub.nodes, Role.CONTROLLER):
            # XEP-0324: only the parameters a provisioning server opened to the requester.
            for spec in self.commands.lookup.writable_of(node, str(requester)):
                current = node.cache.get(spec.name)
                now = f", now {format_value(spec, current.value)}" if current else ""
                options.append(
                    {"label": f"{node.name}: {spec.name}{now}", "value": f"{node.id}.{spec.name}"}
                )
        remote = self.commands.devices.remote
        for key, label in (
            [] if remote is None else remote.devices_for(str(requester), Role.CONTROLLER)
        ):
            # The remote's own control form names the field: "on", or "state on".
            options.append({"label": label, "value": f"{key}."})
        if not options:
            return self._done(session, "No device here can be set.")
        form = self._form("Set a device", "Pick what to set and type the new value.")
        form.add_field(
            var="target",
            ftype="list-single",
            label="Device and field",
            required=True,
            options=options,
            value=options[0]["value"],
        )
        form.add_field(
            var="value",
            ftype="text-single",
            label="New value",
            desc="on/off for switches, a number for levels, text for text fields",
            required=True,
        )
        return self._ask(session, form, self._set_submit)

    async def _set_submit(self, payload: Any, session: Session) -> Session:
        requester = str(session["from"])
        values = self._submitted(payload)
        target = str(values.get("target") or "")
        raw = str(values.get("value") or "").strip()
        node_id, _, field = target.rpartition(".")
        remote = self.commands.devices.remote
        if remote is not None and remote.names_remote([node_id]) and raw:
            return await self._remote(session, "set", (node_id, *raw.split()))
        if not self.access.allows(requester, Role.READER, node_id):
            node_id = ""  # not the requester's to see: answered like a missing device
        elif not self.access.allows(requester, Role.CONTROLLER, node_id):
            raise XMPPError("forbidden", etype="cancel")
        node = self.hub.nodes.get(node_id)
        # XEP-0324: a parameter not opened to the requester is refused like a missing one.
        writable = self.commands.lookup.writable_of(node, requester) if node is not None else []
        spec = next((s for s in writable if s.name == field), None)
        if node is None or spec is None:
            return self._done(session, f"Nothing to set called '{target}'.", ok=False)
        if not raw:
            hint = f"Type a value, e.g. {example_value(spec)}."
            return self._done(session, hint, ok=False)
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                ok, text = await self.commands.devices.write_reply(node, spec, raw, actor=requester)
        except TimeoutError:
            return self._done(session, f"{node.name} did not answer in time.", ok=False)
        return self._done(session, text, ok=ok)

    async def _status(self, requester: JID, session: Session) -> Session:
        return self._done(session, self.commands.devices.list_reply(str(requester)))


def _add_device_picker(
    form: Any, nodes: list[Node], others: list[tuple[str, str]] | None = None
) -> None:
    """The ``device`` field of the Read and Watch forms: a list-single, the first preselected.

    ``others``: (value, label) of other hubs' devices (``garage/door``), after this hub's.
    """
    options = [{"label": device_label(n), "value": n.id} for n in nodes]
    options += [{"label": label, "value": value} for value, label in others or []]
    form.add_field(
        var="device",
        ftype="list-single",
        label="Device",
        required=True,
        options=options,
        value=options[0]["value"],
    )
