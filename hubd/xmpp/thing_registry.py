"""XEP-0347 Thing registry: the hub registers, and whoever holds its claim code becomes its owner.

At every session start the hub finds its registry (``discovery.registry``, or
with ``auto`` the first component of its server whose disco#info lists
``urn:xmpp:iot:discovery``) and then:

- unclaimed: ``register``s with its meta tags (``selfOwned`` when configured);
  an answer carrying ``<claimed/>`` means it was claimed already;
- claimed publicly: sends ``update`` with the tags that changed since the
  last registration (``<disowned/>`` in the answer: register again;
  ``item-not-found``: the owner removed it, no more updates);
- claimed privately, removed, or unregistered: nothing.

The registry's own requests (``claimed``, ``removed``, ``disowned``) are
obeyed from the registry only; everyone else gets ``forbidden``.  A registry
that is a client account is first asked for a presence subscription and then
addressed at its full JID (its server would answer for the bare JID).  A
registry that refuses or does not answer is logged once and tried again
with backoff; nothing else waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import CoroutineCallback

from hubd.core.access import AccessPolicy, Role
from hubd.core.backoff import Backoff
from hubd.core.claim import KEY, MetaTag, meta_tags
from hubd.core.ownership import FILE_NAME, Ownership, new_key, save_ownership
from hubd.core.settings import DiscoverySettings
from hubd.errors import BadRequest
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.commands import ChatCommands
from hubd.xmpp.discovery_xml import (
    NS_DISCOVERY,
    discovery_child,
    local,
    parse_claimed,
    register_element,
    unregister_element,
    update_element,
)
from hubd.xmpp.errors import ErrorCondition
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result

_LOGGER = logging.getLogger(__name__)

ASK_TIMEOUT = 15.0
RETRY_BASE = 15.0
RETRY_CAP = 900.0
FORBIDDEN = ErrorCondition("cancel", "forbidden", "Only the Thing registry may say that.")


class _Unavailable(Exception):
    """The registry cannot be reached or refused: retried with backoff."""


class _Waiting(Exception):
    """The registry is not there yet (subscription pending, offline): its presence wakes us."""


class ThingRegistryClient:
    """The hub's side of XEP-0347."""

    def __init__(
        self,
        xmpp: ClientXMPP,
        access: AccessPolicy,
        settings: DiscoverySettings,
        state_dir: Path,
        ownership: Ownership,
        commands: ChatCommands,
    ) -> None:
        self.xmpp = xmpp
        self.access = access
        self.settings = settings
        self.state_dir = state_dir
        self.ownership = ownership
        #: The registry's address once known (configured, or found with ``auto``).
        self.registry: JID | None = None if settings.registry == "auto" else JID(settings.registry)
        self.backoff = Backoff(base=RETRY_BASE, cap=RETRY_CAP)
        self._kick = asyncio.Event()
        self._online = False
        self._said: str | None = None
        self._asked_subscription = False
        self._waiting = False  # for the registry's presence: it wakes the loop
        self._roster_ready = False  # this session's roster: says whether we are its friend
        self._saving = asyncio.Lock()  # one write of registry.json at a time, in order
        access.set_claimed(() if ownership.owner is None else (ownership.owner,))
        xmpp.register_handler(
            CoroutineCallback(
                "iot discovery request",
                PayloadMatcher("iq", NS_DISCOVERY, types=("set",)),
                self._on_request,
            )
        )
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        xmpp.add_event_handler("presence_available", self._on_presence)
        xmpp.add_event_handler("presence_subscribed", self._on_presence)
        xmpp.add_event_handler("roster_update", self._on_roster)
        commands.register(
            Command(
                name="unregister",
                usage="unregister",
                summary="take the hub out of its Thing registry (XEP-0347)",
                role=Role.OWNER,
                run=self._unregister_command,
                controls=True,
            )
        )

    # --- who is the registry --------------------------------------------------------

    def is_registry(self, sender: JID) -> bool:
        """True for stanzas from the registry (its bare JID; a component's domain)."""
        return self.registry is not None and sender.bare.lower() == self.registry.bare.lower()

    def tags(self) -> tuple[MetaTag, ...]:
        """The meta tags as configured now, ``KEY`` last."""
        return meta_tags(self.settings.meta, self.ownership.key)

    # --- slixmpp events: plain flags, the work is in run() --------------------------

    def _on_session_start(self, _event: Any) -> None:
        self._online = True
        self._asked_subscription = False
        self._roster_ready = False
        self._kick.set()

    def _on_roster(self, _iq: Any) -> None:
        self._roster_ready = True
        if self._waiting:
            self._kick.set()

    def _on_disconnected(self, _event: Any) -> None:
        self._online = False

    def _on_presence(self, presence: Any) -> None:
        if self._waiting and self.registry is not None and self.is_registry(presence["from"]):
            self._kick.set()

    # --- the loop ---------------------------------------------------------------------

    async def run(self) -> None:
        """Register, update or stay quiet at each session start; retry with backoff."""
        while True:
            await self._kick.wait()
            self._kick.clear()
            if not self._online:
                continue
            self._waiting = False
            try:
                await self._work()
            except _Waiting as waiting:
                self._waiting = True
                if str(waiting):
                    self._say(logging.INFO, str(waiting))
            except (_Unavailable, OSError) as problem:
                if isinstance(problem, OSError):
                    problem = _Unavailable(f"cannot write {FILE_NAME}: {problem.strerror}")
                delay = self.backoff.next_delay()
                self._say(logging.WARNING, f"{problem}; trying again in {delay:.0f} s")
                try:
                    async with asyncio.timeout(delay):
                        await self._kick.wait()
                except TimeoutError:
                    self._kick.set()
            else:
                self.backoff.reset()

    def _say(self, level: int, text: str) -> None:
        """Log a registry problem once, not at every retry."""
        if text.split(";", 1)[0] != (self._said or "").split(";", 1)[0]:
            _LOGGER.log(level, "thing registry: %s", text)
        self._said = text

    async def _work(self) -> None:
        state = self.ownership
        if state.unregistered or state.removed or (state.claimed and not state.public):
            return
        target = await self._target()
        if state.claimed or (self.settings.self_owned and state.sent):
            await self._update(target)
        else:
            await self._register(target)
        self._said = None

    async def _register(self, target: JID) -> None:
        tags = self.tags()
        answer = await self._ask(
            target, register_element(tags, self_owned=self.settings.self_owned), "register"
        )
        if answer is not None and local(answer) == "claimed":
            # Claimed before this registration (XEP-0347 §3.6): take the owner it names.
            try:
                await self._claimed(answer)
            except BadRequest as err:
                raise _Unavailable(f"{target} answered register with a bad claim: {err}") from None
            return
        await self._save(self.ownership.changed(sent=_as_dict(tags)))
        if self.settings.self_owned:
            _LOGGER.info("registered with thing registry %s as self-owned", target)
        else:
            _LOGGER.info(
                "registered with thing registry %s; waiting to be claimed "
                "(hubd claim shows the claim code)",
                target,
            )

    async def _update(self, target: JID) -> None:
        tags = self.tags()
        sent = self.ownership.sent
        changed = [t for t in tags if t.name != KEY and sent.get(t.name) != t.value]
        # A tag no longer configured is removed with an empty string (§3.12).
        current = {t.name for t in tags}
        changed += [MetaTag(name, "") for name in sent if name not in current and name != KEY]
        if not changed:
            return
        try:
            answer = await self._ask(target, update_element(changed), "update")
        except _Unavailable as problem:
            if "item-not-found" not in str(problem):
                raise
            _LOGGER.info("thing registry %s: the owner removed the hub; no more updates", target)
            await self._save(self.ownership.changed(removed=True))
            return
        if answer is not None and local(answer) == "disowned":
            await self._disowned("the registry answered the update with disowned")
            return
        await self._save(self.ownership.changed(sent=_as_dict(tags)))
        _LOGGER.info("thing registry %s: updated %s", target, ", ".join(t.name for t in changed))

    async def unregister(self) -> None:
        """Leave the registry (``unregister``) and stop registering."""
        target = await self._target()
        await self._ask(target, unregister_element(), "unregister")
        await self._save(self.ownership.changed(unregistered=True))
        _LOGGER.info("unregistered from thing registry %s", target)

    async def _unregister_command(self, _call: Invocation) -> str:
        try:
            await self.unregister()
        except (_Unavailable, _Waiting) as problem:
            raise CommandError(f"Not unregistered: {problem}.") from None
        return "Unregistered: the hub no longer registers with its Thing registry."

    # --- finding and reaching the registry ------------------------------------------

    async def _target(self) -> JID:
        """The JID to send to: a component's bare JID, an account's full JID."""
        if self.registry is None:
            self.registry = await self._find_component()
        registry = self.registry
        if not registry.user or registry.resource:
            return registry
        item = self.xmpp.client_roster[registry.bare]
        resources = list(item.resources)
        if resources:  # its presence reaches the hub: the subscription is there
            return JID(f"{registry.bare}/{resources[0]}")
        if not self._roster_ready:
            raise _Waiting("")  # the roster says whether to ask; it is on its way
        if not item["to"]:
            if not self._asked_subscription:
                self._asked_subscription = True
                item.subscribe()
            raise _Waiting(f"asked {registry.bare} for a presence subscription; waiting for it")
        raise _Waiting(f"waiting for the presence of {registry.bare} (offline?)")

    async def _find_component(self) -> JID:
        disco: Any = self.xmpp.plugin["xep_0030"]
        domain = JID(self.xmpp.boundjid.domain)
        try:
            items = await disco.get_items(jid=domain, timeout=ASK_TIMEOUT)
            for item_jid, _node, _name in items["disco_items"]["items"]:
                info = await disco.get_info(jid=JID(item_jid), timeout=ASK_TIMEOUT)
                if NS_DISCOVERY in info["disco_info"]["features"]:
                    _LOGGER.info("thing registry found: %s", item_jid)
                    return JID(item_jid)
        except IqTimeout:
            raise _Unavailable(f"{domain} did not answer service discovery") from None
        except IqError as err:
            raise _Unavailable(f"service discovery refused: {err.condition}") from None
        raise _Unavailable(f"no component of {domain} advertises {NS_DISCOVERY}")

    async def _ask(self, target: JID, element: Element, what: str) -> Element | None:
        """Send one request; the discovery payload of the answer, if any."""
        iq = self.xmpp.make_iq_set(ito=target)
        iq.xml.append(element)
        sender: Any = iq  # slixmpp's Iq.send is untyped
        try:
            answer = await sender.send(timeout=ASK_TIMEOUT)
        except IqTimeout:
            raise _Unavailable(f"{target} did not answer {what} within {ASK_TIMEOUT:g} s") from None
        except IqError as err:
            raise _Unavailable(f"{target} refused {what}: {err.condition}") from None
        found: Element | None = discovery_child(answer.xml)
        return found

    # --- the registry's requests ------------------------------------------------------

    async def _on_request(self, iq: Any) -> None:
        element = payload(iq, "{" + NS_DISCOVERY + "}")
        assert element is not None
        if not self.is_registry(iq["from"]):
            _LOGGER.info("ignored %s from %s: not the thing registry", local(element), iq["from"])
            send_error(iq, FORBIDDEN)
            return
        kind = local(element)
        try:
            if kind == "claimed":
                await self._claimed(element)
            elif kind == "disowned":
                await self._disowned("disowned by the registry")
            elif kind == "removed":
                await self._save(self.ownership.changed(removed=True))
                _LOGGER.info("the owner removed the hub from the thing registry")
            else:
                send_error(iq, ErrorCondition("cancel", "feature-not-implemented", kind))
                return
        except BadRequest as err:
            send_error(iq, ErrorCondition("modify", "bad-request", str(err)))
            return
        except OSError as err:
            _LOGGER.error("cannot write %s: %s", FILE_NAME, err.strerror)
            send_error(iq, ErrorCondition("wait", "internal-server-error", "cannot store it"))
            return
        send_result(iq)

    async def _claimed(self, element: Element) -> None:
        claim = parse_claimed(element)
        await self._save(
            self.ownership.changed(
                owner=claim.owner, public=claim.public, removed=False, unregistered=False
            )
        )
        self.access.set_claimed((claim.owner,))
        _LOGGER.info(
            "claimed by %s through the thing registry (%s)",
            claim.owner,
            "public" if claim.public else "private",
        )
        # XEP-0347 §3.8: the Thing may now befriend its owner.
        self.xmpp.send_presence(pto=JID(claim.owner), ptype="subscribe")

    async def _disowned(self, why: str) -> None:
        former = self.ownership.owner
        # A new KEY: the former owner has seen the old claim code and must not reclaim with it.
        await self._save(
            self.ownership.changed(owner=None, public=True, sent={}, removed=False, key=new_key())
        )
        self.access.set_claimed(())
        _LOGGER.info("%s: %s is no longer an owner; registering again", why, former or "nobody")
        if former:
            self.xmpp.send_presence(pto=JID(former), ptype="unsubscribed")
        self._kick.set()

    async def _save(self, ownership: Ownership) -> None:
        self.ownership = ownership
        async with self._saving:
            # The latest standing, whichever change queued first.
            await asyncio.to_thread(save_ownership, self.state_dir, self.ownership)


def _as_dict(tags: tuple[MetaTag, ...]) -> dict[str, str | float]:
    return {tag.name: tag.value for tag in tags}
