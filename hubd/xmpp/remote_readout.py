"""Readouts (XEP-0323) of a remote hub's nodes, asked under this hub's identity.

One :meth:`RemoteReader.read` sends the remote a ``<req/>`` with a sequence
number of this hub's own, waits for its ``accepted``, then gathers its
``fields``/``failure`` messages until the one marked done.  All of it within
the remote's ``timeout``: a remote that does not answer in time gives an
``<error>`` for each node it said nothing about, never a hang, and is asked to
``cancel`` (best effort).  A remote already known to be offline is not asked.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback

from hubd.core.remote_source import RemoteSource, RemoteSources
from hubd.xmpp.remote_sensordata import RemoteAnswer, forward_req, missing, node_errors, take
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, qname
from hubd.xmpp.stanzas import PayloadMatcher, payload

_LOGGER = logging.getLogger(__name__)

_ANSWERS = ("fields", "failure", "done", "started")


class RemoteReader:
    """Forwards readouts to remote hubs and gathers what they answer."""

    def __init__(self, xmpp: ClientXMPP, sources: RemoteSources) -> None:
        self.xmpp = xmpp
        self.sources = sources
        # Random start: after a restart, numbers still in use at a remote are not reused.
        self._next = random.randrange(1, 2**30)
        self._waiting: dict[tuple[str, str], asyncio.Queue[Element]] = {}
        #: Told of a remote that did not answer in time (it goes offline until it answers).
        self.on_silent: Callable[[RemoteSource, str], None] | None = None
        xmpp.register_handler(
            Callback(
                "remote sensordata",
                PayloadMatcher("message", NS_SENSORDATA, _ANSWERS),
                self._on_message,
            )
        )

    def _on_message(self, message: Any) -> None:
        source = self.sources.by_jid(str(message["from"]))
        element = payload(message, "{" + NS_SENSORDATA + "}")
        if source is None or element is None:
            return  # not from a remote hub: nobody here waits for it
        queue = self._waiting.get((source.jid, element.get("seqnr", "")))
        if queue is not None:
            queue.put_nowait(element)

    def _seqnr(self) -> int:
        self._next = self._next % (2**31 - 1) + 1
        return self._next

    async def read(
        self, source: RemoteSource, original: Element, node_ids: list[str]
    ) -> RemoteAnswer:
        """The remote's answer for ``node_ids``, an error for each node it could not give."""
        answer = RemoteAnswer()
        if not source.online:
            answer.errors = node_errors(source.id, node_ids, f"{source.id}: {source.reason}")
            return answer
        seqnr = self._seqnr()
        key = (source.jid, str(seqnr))
        queue: asyncio.Queue[Element] = asyncio.Queue()
        self._waiting[key] = queue
        try:
            async with asyncio.timeout(source.timeout):
                problem = await self._ask(source, forward_req(original, seqnr, node_ids))
                if problem is not None:
                    answer.errors = node_errors(source.id, node_ids, problem)
                    return answer
                while not answer.done:
                    take(answer, await queue.get(), source.id)
        except TimeoutError:
            self._cancel(source, seqnr)
            silent = f"no answer within {source.timeout:g} s"
            answer.errors.extend(
                node_errors(source.id, missing(answer, node_ids), f"{source.id}: {silent}")
            )
            if self.on_silent is not None:
                self.on_silent(source, silent)
        except asyncio.CancelledError:
            self._cancel(source, seqnr)  # the asker cancelled: so does the remote
            raise
        finally:
            del self._waiting[key]
        return answer

    async def _ask(self, source: RemoteSource, request: Element) -> str | None:
        """Send the request; None when the remote accepted it, else why not."""
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(request)
        try:
            await iq.send(timeout=source.timeout)
        except IqTimeout:
            raise TimeoutError from None
        except IqError as err:
            text = err.text or err.condition
            return f"{source.id}: {text}"
        return None

    def _cancel(self, source: RemoteSource, seqnr: int) -> None:
        if not self.xmpp.is_connected():
            return
        iq: Any = self.xmpp.make_iq_get(ito=JID(source.jid))
        iq.xml.append(Element(qname(NS_SENSORDATA, "cancel"), {"seqnr": str(seqnr)}))
        iq.send(timeout=source.timeout).add_done_callback(_ignore)


def _ignore(answer: asyncio.Future[Any]) -> None:
    """The remote's answer to a cancel changes nothing here (an error is not logged as lost)."""
    if not answer.cancelled():
        answer.exception()
