"""Readouts (XEP-0323) of a remote hub's nodes, asked under this hub's identity.

:meth:`RemoteReader.begin` writes the remote a ``<req/>`` with a sequence
number of this hub's own, in the caller's turn of the loop (the remote starts
working before this hub answers its own asker); the :class:`RemoteRead` it
returns gathers the remote's ``fields``/``failure`` messages as they are read,
with no task of its own, until the one marked done, and hands the answer on in
that turn.  All of it within the remote's ``timeout``, counted from the
request: a remote that does not answer in time gives an ``<error>`` for each
node it said nothing about, never a hang, and is asked to ``cancel`` (best
effort), as it is when the asker cancels.  A remote already known to be
offline is not asked.

The remote's IQ answer is matched here by its id, by one handler for every
readout, rather than by a handler slixmpp registers and removes per request.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher.base import MatcherBase

from hubd.core.remote_source import RemoteSource, RemoteSources
from hubd.xmpp.direct_send import send_now
from hubd.xmpp.fast_routes import routes_for
from hubd.xmpp.remote_sensordata import RemoteAnswer, forward_req, missing, node_errors, take
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, qname
from hubd.xmpp.stanzas import PayloadMatcher, payload

_ANSWERS = ("fields", "failure", "done", "started")
_IQ = "{jabber:client}iq"


class RemoteReader:
    """Forwards readouts to remote hubs and gathers what they answer."""

    def __init__(self, xmpp: ClientXMPP, sources: RemoteSources) -> None:
        self.xmpp = xmpp
        self.sources = sources
        # Random start: after a restart, numbers still in use at a remote are not reused.
        self._next = random.randrange(1, 2**30)
        self._waiting: dict[tuple[str, str], RemoteRead] = {}
        #: The readout waiting for each request's IQ answer, by the request's id.
        self._replies: dict[str, RemoteRead] = {}
        #: Told of a remote that did not answer in time (it goes offline until it answers).
        self.on_silent: Callable[[RemoteSource, str], None] | None = None
        xmpp.register_handler(
            Callback(
                "remote sensordata",
                PayloadMatcher("message", NS_SENSORDATA, _ANSWERS),
                self._on_message,
            )
        )
        xmpp.register_handler(
            Callback("remote sensordata replies", _ReplyMatcher(self._replies), self._on_reply)
        )
        routes = routes_for(xmpp)
        for name in _ANSWERS:
            routes.add("message", qname(NS_SENSORDATA, name), self._on_message)
        routes.add("iq", qname(NS_SENSORDATA, "accepted"), self._on_reply)

    def _on_message(self, message: Any) -> bool:
        """Take a remote's answer to a readout in flight; True when it was one."""
        source = self.sources.by_jid(message.xml.get("from", ""))
        element = payload(message, "{" + NS_SENSORDATA + "}")
        if source is None or element is None:
            return False  # not from a remote hub: nobody here waits for it
        read = self._waiting.get((source.jid, element.get("seqnr", "")))
        if read is None:
            return False
        read.take(element)
        return True

    def _on_reply(self, iq: Any) -> bool:
        """Take the remote's IQ answer to a request in flight; True when it was one."""
        xml = iq.xml
        read = self._replies.get(xml.get("id", ""))
        if read is None or xml.get("type") not in ("result", "error"):
            return False
        if self.sources.by_jid(xml.get("from", "")) is not read.source:
            return False  # not the remote asked (a forged id): its answer is still awaited
        del self._replies[xml.get("id", "")]
        if xml.get("type") == "error":
            error = IqError(iq)  # type: ignore[no-untyped-call]
            read.refused(error.text or error.condition)
        return True

    def _seqnr(self) -> int:
        self._next = self._next % (2**31 - 1) + 1
        return self._next

    async def read(
        self, source: RemoteSource, original: Element, node_ids: list[str]
    ) -> RemoteAnswer:
        """The remote's answer for ``node_ids``, an error for each node it could not give."""
        if not source.online:
            answer = RemoteAnswer(done=True)
            answer.errors = node_errors(source.id, node_ids, f"{source.id}: {source.reason}")
            return answer
        pending = self.begin(source, original, node_ids)
        try:
            return await pending.done
        finally:
            pending.close()  # cancelled: the remote is asked to cancel too

    def begin(
        self,
        source: RemoteSource,
        original: Element,
        node_ids: list[str],
        *,
        on_answer: Callable[[RemoteAnswer], None] | None = None,
    ) -> RemoteRead:
        """Write an online remote its request now.

        ``on_answer`` is called with the answer in the turn it is complete (the
        remote's last message, its error, or the timeout), and ``done`` gets
        it; ``close()`` (idempotent) when nothing waits for it any more: a
        remote still working on it is asked to cancel.
        """
        read = RemoteRead(self, source, node_ids, on_answer)
        self._waiting[read.key] = read
        read.iq_id = self.xmpp.new_id()
        self._replies[read.iq_id] = read
        xml = Element(_IQ, {"type": "get", "to": source.jid, "id": read.iq_id})
        xml.append(forward_req(original, read.seqnr, node_ids))
        send_now(self.xmpp, self.xmpp.Iq(xml=xml))
        return read

    def _forget(self, read: RemoteRead) -> None:
        self._waiting.pop(read.key, None)
        self._replies.pop(read.iq_id, None)

    def _cancel(self, source: RemoteSource, seqnr: int) -> None:
        if not self.xmpp.is_connected():
            return
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(Element(qname(NS_SENSORDATA, "cancel"), {"seqnr": str(seqnr)}))
        iq.send(timeout=source.timeout).add_done_callback(_ignore)


class RemoteRead:
    """One readout asked of one remote, gathered as its answers come (no task of its own)."""

    def __init__(
        self,
        reader: RemoteReader,
        source: RemoteSource,
        node_ids: list[str],
        on_answer: Callable[[RemoteAnswer], None] | None,
    ) -> None:
        self.reader = reader
        self.source = source
        self.node_ids = node_ids
        self.on_answer = on_answer
        self.seqnr = reader._seqnr()
        self.key = (source.jid, str(self.seqnr))
        self.iq_id = ""
        self.answer = RemoteAnswer()
        loop = asyncio.get_running_loop()
        #: The answer, once complete (cancelled when the asker goes first).
        self.done: asyncio.Future[RemoteAnswer] = loop.create_future()
        # Counted from the request: the remote's whole answer within its timeout.
        self._timer: asyncio.TimerHandle | None = loop.call_at(
            loop.time() + source.timeout, self._time_out
        )

    def take(self, message: Element) -> None:
        """One of the remote's messages (``fields``, ``failure``, ``done``...)."""
        take(self.answer, message, self.source.id)
        if self.answer.done:
            self._finish()

    def refused(self, text: str) -> None:
        """The remote answered the request with an error: every node fails with it."""
        self.answer.errors = node_errors(self.source.id, self.node_ids, f"{self.source.id}: {text}")
        self._finish()

    def _time_out(self) -> None:
        self._timer = None
        source = self.source
        self.reader._cancel(source, self.seqnr)
        silent = f"no answer within {source.timeout:g} s"
        self.answer.errors.extend(
            node_errors(source.id, missing(self.answer, self.node_ids), f"{source.id}: {silent}")
        )
        if self.reader.on_silent is not None:
            self.reader.on_silent(source, silent)
        self._finish()

    def _finish(self) -> None:
        self._stop()
        if not self.done.done():
            self.done.set_result(self.answer)
        if self.on_answer is not None:
            on_answer, self.on_answer = self.on_answer, None
            on_answer(self.answer)

    def _stop(self) -> None:
        self.reader._forget(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        """Stop waiting; a remote still working on it is asked to cancel."""
        if self.done.done() and not self.done.cancelled():
            return
        self.on_answer = None
        finished = self._timer is None  # timed out: asked to cancel already
        self._stop()
        self.done.cancel()
        if not finished:
            self.reader._cancel(self.source, self.seqnr)


class _ReplyMatcher(MatcherBase):
    """An IQ result or error whose id is one of the requests in flight."""

    def __init__(self, replies: dict[str, Any]) -> None:
        super().__init__(None)
        self.replies = replies

    def match(self, stanza: Any) -> bool:
        xml = stanza.xml
        return (
            xml.tag == _IQ
            and xml.get("id") in self.replies
            and xml.get("type") in ("result", "error")
        )


def _ignore(answer: asyncio.Future[Any]) -> None:
    """The remote's answer to a cancel changes nothing here (an error is not logged as lost)."""
    if not answer.cancelled():
        answer.exception()
