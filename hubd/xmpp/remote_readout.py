"""Readouts (XEP-0323) of a remote hub's nodes, asked under this hub's identity.

:meth:`RemoteReader.begin` writes the remote a ``<req/>`` with a sequence
number of this hub's own, in the caller's turn of the loop (the remote starts
working before this hub answers its own asker); :meth:`RemoteRead.answer`
waits for the remote's ``accepted``, then gathers its ``fields``/``failure``
messages until the one marked done.  All of it within the remote's
``timeout``, counted from the request: a remote that does not answer in time
gives an ``<error>`` for each node it said nothing about, never a hang, and
is asked to ``cancel`` (best effort), as it is when the asker cancels.
A remote already known to be offline is not asked.

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
        self._waiting: dict[tuple[str, str], asyncio.Queue[Element]] = {}
        #: The remote's IQ answer to each request in flight, by the request's id.
        self._replies: dict[str, tuple[str, asyncio.Future[Any]]] = {}
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

    def _on_message(self, message: Any) -> None:
        source = self.sources.by_jid(message.xml.get("from", ""))
        element = payload(message, "{" + NS_SENSORDATA + "}")
        if source is None or element is None:
            return  # not from a remote hub: nobody here waits for it
        queue = self._waiting.get((source.jid, element.get("seqnr", "")))
        if queue is not None:
            queue.put_nowait(element)

    def _on_reply(self, iq: Any) -> None:
        xml = iq.xml
        entry = self._replies.get(xml.get("id", ""))
        source = self.sources.by_jid(xml.get("from", ""))
        if entry is None or source is None or source.jid != entry[0]:
            return  # not the remote asked (a forged id): its answer is still awaited
        del self._replies[xml.get("id", "")]
        future = entry[1]
        if not future.done():
            if xml.get("type") == "error":
                future.set_exception(IqError(iq))  # type: ignore[no-untyped-call]
            else:
                future.set_result(iq)

    def _seqnr(self) -> int:
        self._next = self._next % (2**31 - 1) + 1
        return self._next

    async def read(
        self, source: RemoteSource, original: Element, node_ids: list[str]
    ) -> RemoteAnswer:
        """The remote's answer for ``node_ids``, an error for each node it could not give."""
        pending = self.begin(source, original, node_ids)
        try:
            return await pending.answer()
        finally:
            pending.close()

    def begin(self, source: RemoteSource, original: Element, node_ids: list[str]) -> RemoteRead:
        """Send the remote its request now; the caller awaits ``answer()`` and then ``close()``.

        ``close()`` (idempotent) also when ``answer()`` never ran (a task
        cancelled before it started): the remote is then asked to cancel.
        """
        if not source.online:
            return RemoteRead(self, source, node_ids, f"{source.id}: {source.reason}")
        read = RemoteRead(self, source, node_ids)
        self._waiting[read.key] = read.queue
        iq_id = self.xmpp.new_id()
        self._replies[iq_id] = (source.jid, read.reply)
        read.iq_id = iq_id
        xml = Element(_IQ, {"type": "get", "to": source.jid, "id": iq_id})
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
    """One readout asked of one remote: its answer, awaited once."""

    def __init__(
        self, reader: RemoteReader, source: RemoteSource, node_ids: list[str], offline: str = ""
    ) -> None:
        self.reader = reader
        self.source = source
        self.node_ids = node_ids
        self.offline = offline
        self.seqnr = 0 if offline else reader._seqnr()
        self.key = (source.jid, str(self.seqnr))
        self.queue: asyncio.Queue[Element] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.reply: asyncio.Future[Any] = loop.create_future()
        self.iq_id = ""
        self.deadline = loop.time() + source.timeout
        self._finished = bool(offline)

    async def answer(self) -> RemoteAnswer:
        """What the remote said until its ``done``, errors for what it did not say in time."""
        answer = RemoteAnswer()
        source = self.source
        if self.offline:
            answer.errors = node_errors(source.id, self.node_ids, self.offline)
            return answer
        try:
            async with asyncio.timeout_at(self.deadline):
                try:
                    await self.reply
                except IqError as err:
                    self._finished = True
                    text = err.text or err.condition
                    answer.errors = node_errors(source.id, self.node_ids, f"{source.id}: {text}")
                    return answer
                while not answer.done:
                    take(answer, await self.queue.get(), source.id)
                self._finished = True
        except TimeoutError:
            self.close()  # asks the remote to cancel
            silent = f"no answer within {source.timeout:g} s"
            answer.errors.extend(
                node_errors(source.id, missing(answer, self.node_ids), f"{source.id}: {silent}")
            )
            if self.reader.on_silent is not None:
                self.reader.on_silent(source, silent)
        return answer

    def close(self) -> None:
        """Stop waiting; a remote still working on it is asked to cancel."""
        if not self.offline:
            self.reader._forget(self)
        if not self.reply.done():
            self.reply.cancel()  # nothing awaits it any more
        if not self._finished:
            self._finished = True
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
