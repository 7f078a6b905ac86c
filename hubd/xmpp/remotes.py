"""Remote hubs (``remotes:``): fetch each one's tree with its own XEP-0326 requests.

The remote is asked ``getAllNodes`` on its ``MeteringTopology`` at every
session start of this hub, whenever the remote's presence arrives (it comes
online, or its status line changes because one of its devices did) and on
each of its own tree events (this hub subscribes to them after each fetch);
what it answers goes into its :class:`~hubd.core.remote_source.RemoteSource`.  Its
presence going unavailable, a refusal, or no answer within its ``timeout``
turns its nodes offline with the reason (logged once); the next presence or
reconnect brings them back, and a remote that is present but silent (no
answer to a tree request, a readout or a control) is asked again with
backoff until it answers.

A loop (this hub lists a remote that lists this hub) is refused, not
followed: a remote hub asking this one for its tree is a hub that has this one
as a data source.  This hub then stops fetching it and answers it
``conflict`` with :data:`~hubd.core.remote_source.LOOP`; the other hub, told
so, refuses the loop in turn.  Both say it once, at ERROR.

A longer loop (A lists B, B lists C, C lists A) is found from what the hubs
say of themselves: each ``getAllNodes`` answer on ``MeteringTopology`` carries
the bare JIDs of the hubs its hub reaches through its remotes (its remotes,
and what they said they reach; :data:`~hubd.xmpp.concentrator_remote.NS_REMOTE_HUBS`).
A remote whose answer names this hub is refused (:data:`LONG_LOOP`).  When what
this hub reaches changes, it sends its presence again: the hubs fetching it
fetch again on it, so the news travels along the chain until one hub finds
itself in it.  Requests never recurse (a forwarded readout or control names
the remote's own nodes; a tree fetch asks for its own nodes only), so even
before a loop is found nothing is asked twice.

This hub asks for a presence subscription to each remote once per session
when the roster shows none: the remote hub approves it because it lists this
hub in its own ``access:``.  Fetches run in the :meth:`RemoteHubs.run` task
(owned by the client, cancelled with it); bursts of presence are coalesced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback

from hubd.core.backoff import Backoff
from hubd.core.remote_source import LONG_LOOP, LOOP, RemoteSource, RemoteSources
from hubd.errors import BadRequest
from hubd.xmpp.concentrator import TREE_EVENTS
from hubd.xmpp.concentrator_remote import (
    build_get_all_nodes,
    build_subscribe,
    parse_reach,
    parse_remote_nodes,
)
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.stanzas import PayloadMatcher

_LOGGER = logging.getLogger(__name__)

GONE = "the remote hub went offline"
#: Seconds before asking a silent remote again, doubling up to RETRY_CAP.
RETRY_BASE = 2.0
RETRY_CAP = 300.0


class RemoteHubs:
    """Keeps each configured remote's nodes current, as seen from this hub."""

    def __init__(self, xmpp: ClientXMPP, sources: RemoteSources) -> None:
        self.xmpp = xmpp
        self.sources = sources
        #: Called after a remote's nodes or state changed (tree events, presence line).
        self.listeners: list[Callable[[RemoteSource], None]] = []
        #: Called when the hubs reached from this one changed (the client sends its presence).
        self.on_reach_changed: Callable[[], None] | None = None
        self._own_bare = ""
        self._dirty: set[str] = set()
        self._kick = asyncio.Event()
        # Silent remotes: when to ask each again (loop time), and how long to wait after.
        self._due: dict[str, float] = {}
        self._backoff = {s.id: Backoff(RETRY_BASE, RETRY_CAP) for s in sources}
        # How often each remote went offline (presence unavailable): a tree answer sent
        # before it went is stale when it arrives after, and must not bring it back.
        self._departures = dict.fromkeys((s.id for s in sources), 0)
        xmpp.register_handler(
            Callback(
                "remote tree events",
                PayloadMatcher("message", NS_CONCENTRATORS, TREE_EVENTS),
                self._on_tree_event,
            )
        )
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("presence_available", self._on_available)
        xmpp.add_event_handler("presence_unavailable", self._on_unavailable)

    def _on_session_start(self, _event: Any) -> None:
        self._own_bare = self.xmpp.boundjid.bare.lower()
        for source in self.sources:
            bare = JID(source.jid).bare
            if self.xmpp.client_roster[bare]["subscription"] not in ("to", "both"):
                self.xmpp.send_presence(pto=bare, ptype="subscribe")
        self.refresh_all()

    def _on_available(self, presence: Any) -> None:
        source = self.sources.by_jid(str(presence["from"]))
        if source is not None:
            self.refresh(source.id)

    def _on_tree_event(self, message: Any) -> None:
        # A remote's own tree event (it subscribed us after each fetch): fetch again.
        source = self.sources.by_jid(str(message["from"]))
        if source is not None and not source.looped:
            self.refresh(source.id)

    def _on_unavailable(self, presence: Any) -> None:
        source = self.sources.by_jid(str(presence["from"]))
        if source is None:
            return
        self._due.pop(source.id, None)  # its next presence brings it back
        self._departures[source.id] += 1
        self._dirty.discard(source.id)  # a fetch not yet sent would only bounce off the server
        if source.set_offline(GONE):
            self._changed(source)

    def not_answering(self, source: RemoteSource, reason: str) -> None:
        """A request to ``source`` went unanswered: offline, and asked again later."""
        if source.set_offline(reason):
            self._changed(source)
        self._retry_later(source)

    def loop_refusal(self, requester: str) -> str | None:
        """Why a concentrator request from ``requester`` is refused (a loop), or None."""
        source = self.sources.by_bare(requester)
        if source is None:
            return None
        if source.refuse_loop():
            self._due.pop(source.id, None)
            self._changed(source)
        return LOOP

    def _retry_later(self, source: RemoteSource) -> None:
        if source.looped or source.id in self._due:
            return
        delay = self._backoff[source.id].next_delay()
        self._due[source.id] = asyncio.get_running_loop().time() + delay
        self._kick.set()  # the run task recomputes its wait

    def refresh_all(self) -> None:
        """Fetch every remote's tree again (soon, in the run task)."""
        for source in self.sources:
            self.refresh(source.id)

    def refresh(self, source_id: str) -> None:
        """Fetch one remote's tree again (soon, in the run task)."""
        self._dirty.add(source_id)
        self._kick.set()

    async def run(self) -> None:
        """Fetch what was asked for, and silent remotes again when due, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            wait = max(min(self._due.values()) - loop.time(), 0) if self._due else None
            try:
                async with asyncio.timeout(wait):
                    await self._kick.wait()
            except TimeoutError:
                pass  # a retry is due
            self._kick.clear()
            now = loop.time()
            for source_id in [i for i, due in self._due.items() if due <= now]:
                del self._due[source_id]
                self._dirty.add(source_id)
            wanted = [s for s in self.sources if s.id in self._dirty and not s.looped]
            self._dirty.clear()
            # Each fetch has its own timeout; one slow remote never holds up another.
            await asyncio.gather(*(self._fetch(source) for source in wanted))

    async def _fetch(self, source: RemoteSource) -> None:
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(build_get_all_nodes())
        silent = True  # no good answer: ask again later
        departures = self._departures[source.id]
        try:
            result = await iq.send(timeout=source.timeout)
        except IqTimeout:
            if self._departures[source.id] != departures:
                return  # gone meanwhile: offline already, for that reason
            changed = source.set_offline(f"no answer within {source.timeout:g} s")
        except IqError as err:
            if self._departures[source.id] != departures:
                return  # gone meanwhile (the server bounced the request): offline already
            error = err.iq["error"]
            if error["condition"] == "conflict" and error["text"] == LOOP:
                changed, silent = source.refuse_loop(), False  # the other hub found the loop
            else:
                said = error["text"] or err.condition
                changed = source.set_offline(f"refused the tree request: {said}")
        else:
            if self._departures[source.id] != departures:
                # Answered, then gone (its unavailable presence came first): still offline,
                # and its next available presence fetches the tree again.
                return
            answer = next(iter(result.xml), None)
            try:
                if answer is None:
                    raise BadRequest("an empty answer")
                nodes, reach = parse_remote_nodes(answer), parse_reach(answer)
                if self._own_bare and self._own_bare in reach:
                    changed, silent = source.refuse_loop(LONG_LOOP), False
                    self._reach_changed()
                else:
                    source.replace_nodes(nodes)
                    changed, silent = True, False
                    self._backoff[source.id].reset()
                    self._take_reach(source, reach)
                    await self._subscribe(source)
            except BadRequest as err:
                changed = source.set_offline(f"an unreadable tree: {err}")
        if changed:
            self._changed(source)
        if silent:
            self._retry_later(source)

    def _take_reach(self, source: RemoteSource, reach: frozenset[str]) -> None:
        if reach != source.reach:
            source.reach = reach
            _LOGGER.info("remote %s reaches: %s", source.id, ", ".join(sorted(reach)) or "none")
            self._reach_changed()

    def _reach_changed(self) -> None:
        # The hubs fetching this one fetch again on its presence: the news travels on.
        if self.on_reach_changed is not None:
            self.on_reach_changed()

    async def _subscribe(self, source: RemoteSource) -> None:
        """Ask for the remote's tree events (again: a remote forgets them when we go away)."""
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(build_subscribe())
        try:
            await iq.send(timeout=source.timeout)
        except (IqError, IqTimeout) as err:
            # Presence changes still bring its tree again; nothing is lost but promptness.
            _LOGGER.info("remote %s sends no tree events: %s", source.id, err)

    def _changed(self, source: RemoteSource) -> None:
        for listener in self.listeners:
            listener(source)
