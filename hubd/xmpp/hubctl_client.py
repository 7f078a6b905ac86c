"""hubctl's XMPP session: log in, ask a hub one thing at a time, leave.

A plain slixmpp client with no plugins (each one costs start-up time, and
hubctl runs once per shell command).  It never sends presence, so it changes
nobody's roster and receives no offline messages; a hub answers its full JID
all the same.  Its resource is ``hubctl-`` plus random hex unless the JID names
one, so that two scripts of the same account never push each other off the
server, and every readout and subscription has a random ``seqnr`` for the same
reason.

Every wait has the session's timeout: the login, each IQ, and each message of
a readout (a readout that keeps sending may take longer than one timeout in
all).  Only data from the hub's bare JID is taken as an answer.

Errors: :class:`CannotConnect` (no server, an untrusted certificate, a
refused login, the connection lost), :class:`HubRefused` (an IQ error, an
XEP-0326 result other than OK), :class:`NoAnswer` (the timeout passed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import JID, ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

from hubd.errors import CannotConnect, HubRefused, NoAnswer
from hubd.xmpp.client_xml import (
    NodeFailure,
    ReadoutPart,
    build_unsubscribe,
    parse_failure,
    readout_part,
)
from hubd.xmpp.sensordata_xml import NodeRef, ParsedField, parse_fields

_LOGGER = logging.getLogger(__name__)

_STANZAS = "{urn:ietf:params:xml:ns:xmpp-stanzas}"
#: How long leaving may take: the end of the stream, and the server's answer to it.
CLOSE_WAIT = 2.0

Readings = list[tuple[NodeRef, list[ParsedField]]]


@dataclass(frozen=True, slots=True)
class Account:
    """Who hubctl logs in as, and where."""

    jid: str
    password: str
    server: str | None = None
    port: int | None = None
    ca_file: Path | None = None


@dataclass
class Readout:
    """Everything a readout brought: values per node, and the nodes that failed."""

    readings: Readings = field(default_factory=list)
    failures: list[NodeFailure] = field(default_factory=list)


class _Lost:
    """Put in every queue when the connection goes: no answer will come now."""


_LOST = _Lost()


def new_seqnr() -> int:
    """A random positive xs:int: readouts of parallel hubctl runs never share one."""
    return secrets.randbelow(2**31 - 2) + 1


class HubSession:
    """One hubctl login; use ``async with`` (connects, and always leaves)."""

    def __init__(self, account: Account, timeout: float) -> None:
        jid = JID(account.jid)
        if not jid.resource:
            jid.resource = f"hubctl-{secrets.token_hex(4)}"
        self.account = account
        self.timeout = timeout
        xmpp = ClientXMPP(jid, account.password)
        xmpp.enable_plaintext = False
        xmpp.enable_direct_tls = account.port == 5223
        if account.ca_file is not None:
            xmpp.ca_certs = account.ca_file
        # A command-line client must not change the roster of the account it uses.
        xmpp.auto_authorize = None
        xmpp.auto_subscribe = False
        xmpp.register_handler(
            Callback("hubctl messages", MatchXPath("{jabber:client}message"), self._on_message)
        )
        xmpp.add_event_handler("disconnected", self._on_disconnected)
        self.xmpp = xmpp
        self._queues: dict[int, tuple[str, asyncio.Queue[ReadoutPart | _Lost]]] = {}
        self._online = False

    async def __aenter__(self) -> HubSession:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- the session -------------------------------------------------------------

    async def connect(self) -> None:
        """Open the session (TLS, SASL, bind), or raise CannotConnect."""
        xmpp = self.xmpp
        target = (
            f"{self.account.server}:{self.account.port or 5222}"
            if self.account.server
            else xmpp.boundjid.domain
        )
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        problem: list[str] = []

        def ready(_event: Any) -> None:
            if not started.done():
                started.set_result(None)

        def fail(reason: str) -> None:
            if not started.done():
                started.set_exception(CannotConnect(reason))

        def closed(reason: Any) -> str:
            detail = problem[-1] if problem else str(reason or "")
            if "CERTIFICATE_VERIFY_FAILED" in detail:
                return (
                    f"the certificate of {target} is not trusted (give its CA with --ca-file "
                    f"or HUBCTL_CA_FILE): {detail}"
                )
            return f"{target} closed the connection before the login" + (
                f" ({detail})" if detail else ""
            )

        def on_failed_auth(_event: Any) -> None:
            if "starttls" not in xmpp.features:
                fail(f"{target} offered no TLS; hubctl never logs in unencrypted")
            else:
                fail(f"{target} refused the login of {xmpp.boundjid.bare} (wrong password?)")

        handlers: list[tuple[str, Callable[[Any], None]]] = [
            ("session_start", ready),
            ("failed_all_auth", on_failed_auth),
            ("connection_failed", lambda err: fail(f"cannot connect to {target}: {err}")),
            ("ssl_invalid_chain", lambda err: problem.append(f"TLS not trusted: {err}")),
            ("stream_error", lambda err: problem.append(f"stream error: {err['condition']}")),
            ("disconnected", lambda reason: fail(closed(reason))),
        ]
        for event, handler in handlers:
            xmpp.add_event_handler(event, handler)
        try:
            if self.account.server:
                xmpp.connect(self.account.server, self.account.port or 5222)
            else:
                xmpp.connect()
            async with asyncio.timeout(self.timeout):
                await started
        except TimeoutError:
            await self._give_up()
            raise CannotConnect(f"no session with {target} within {self.timeout:g} s") from None
        except CannotConnect:
            await self._give_up()
            raise
        finally:
            for event, handler in handlers:
                xmpp.del_event_handler(event, handler)
        self._online = True
        _LOGGER.debug("logged in to %s as %s", target, xmpp.boundjid.full)

    async def _give_up(self) -> None:
        # slixmpp would retry on its own; hubctl reports and exits instead.
        self.xmpp.cancel_connection_attempt()
        self.xmpp.abort()
        await self._stop_filters()

    async def close(self) -> None:
        """Leave: end the stream and wait (briefly) for the server to end its own."""
        xmpp = self.xmpp
        xmpp.cancel_connection_attempt()
        if xmpp.transport is not None:
            try:
                async with asyncio.timeout(CLOSE_WAIT * 2):
                    await xmpp.disconnect(wait=CLOSE_WAIT)
            except TimeoutError:
                xmpp.abort()
        await self._stop_filters()

    async def _stop_filters(self) -> None:
        # slixmpp's outgoing-filter task outlives the stream; end it before the loop closes.
        filters = getattr(self.xmpp, "_run_out_filters", None)
        if filters is not None and not filters.done():
            filters.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await filters

    def _on_disconnected(self, _reason: Any) -> None:
        if self._online:
            self._online = False
            for _hub, queue in self._queues.values():
                queue.put_nowait(_LOST)

    # --- requests ------------------------------------------------------------------

    async def iq(self, to: str, element: Element, itype: str = "get") -> Element | None:
        """Send ``element`` in an IQ; return the result's payload (None if empty), or raise."""
        make = self.xmpp.make_iq_set if itype == "set" else self.xmpp.make_iq_get
        stanza: Any = make(ito=JID(to))
        stanza.xml.append(element)
        try:
            result = await stanza.send(timeout=self.timeout)
        except IqTimeout:
            raise NoAnswer(f"no answer from {to} within {self.timeout:g} s") from None
        except IqError as err:
            raise refusal(err.iq.xml) from None
        children = list(result.xml)
        return children[0] if children else None

    async def readout(self, to: str, req: Element, seqnr: int) -> Readout:
        """Run an XEP-0323 readout (``req`` carries ``seqnr``) until its last message."""
        hub = JID(to).bare
        queue = self._listen(seqnr, hub)
        answer = asyncio.ensure_future(self.iq(to, req))
        readout = Readout()
        try:
            # The answer and the messages race (a hub may even skip <accepted/>):
            # both are awaited until the readout is done.
            while True:
                getter = asyncio.ensure_future(queue.get())
                waiting: set[asyncio.Future[Any]] = {getter}
                if not answer.done():
                    waiting.add(answer)
                done, _ = await asyncio.wait(
                    waiting, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                if answer in done:
                    answer.result()  # raises the hub's refusal
                if getter not in done:
                    if not done:
                        raise NoAnswer(f"no answer from {to} within {self.timeout:g} s")
                    continue
                part = getter.result()
                if isinstance(part, _Lost):
                    raise CannotConnect("the connection to the server was lost")
                if part.kind == "fields":
                    readout.readings.extend(_parse_readings(part.element))
                elif part.kind == "failure":
                    readout.failures.extend(parse_failure(part.element))
                if part.done:
                    return readout
        finally:
            self._queues.pop(seqnr, None)
            if not answer.done():
                answer.cancel()
            with contextlib.suppress(asyncio.CancelledError, HubRefused, NoAnswer):
                await answer

    async def watch(
        self,
        to: str,
        subscribe: Element,
        seqnr: int,
        on_event: Callable[[Readings], bool],
        stop: asyncio.Event,
        duration: float | None = None,
    ) -> None:
        """Subscribe, pass each event to ``on_event`` until it returns False, then unsubscribe.

        Also ends when ``stop`` is set or after ``duration`` seconds.  The
        subscription is removed on every way out but a lost connection.
        """
        loop = asyncio.get_running_loop()
        queue = self._listen(seqnr, JID(to).bare)
        try:
            await self.iq(to, subscribe)
            deadline = None if duration is None else loop.time() + duration
            stopper = asyncio.ensure_future(stop.wait())
            try:
                while True:
                    left = None if deadline is None else max(deadline - loop.time(), 0.0)
                    getter = asyncio.ensure_future(queue.get())
                    done, _ = await asyncio.wait(
                        {getter, stopper}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        break
                    part = getter.result()
                    if isinstance(part, _Lost):
                        raise CannotConnect("the connection to the server was lost")
                    if part.kind == "fields" and not on_event(_parse_readings(part.element)):
                        break
            finally:
                stopper.cancel()
            await self._unsubscribe(to, seqnr)
        finally:
            self._queues.pop(seqnr, None)

    async def _unsubscribe(self, to: str, seqnr: int) -> None:
        try:
            await self.iq(to, build_unsubscribe(seqnr))
        except (HubRefused, NoAnswer) as err:
            # The hub drops it anyway once events to this resource bounce.
            _LOGGER.warning("could not unsubscribe (seqnr %d): %s", seqnr, err)

    def _listen(self, seqnr: int, hub: str) -> asyncio.Queue[ReadoutPart | _Lost]:
        queue: asyncio.Queue[ReadoutPart | _Lost] = asyncio.Queue()
        self._queues[seqnr] = (hub, queue)
        return queue

    def _on_message(self, message: Any) -> None:
        if message["type"] == "error":
            return
        sender = message["from"].bare
        for child in message.xml:
            part = readout_part(child)
            if part is None:
                continue
            listener = self._queues.get(part.seqnr)
            if listener is not None and listener[0] == sender:
                listener[1].put_nowait(part)


def _parse_readings(element: Element) -> Readings:
    try:
        return parse_fields(element)
    except ValueError as err:  # BadRequest is one: the hub sent a value that does not parse
        raise HubRefused("bad-answer", f"the hub sent unreadable values: {err}") from None


def refusal(iq: Element) -> HubRefused:
    """The hub's reason from an IQ error: its condition and text, or an XEP-0326 result code.

    XEP-0326's own failure examples carry no RFC 6120 ``<error/>``, only a
    ``result`` attribute on the response element: that is read too.
    """
    condition, text, code, details = "", "", "", ""
    for child in iq:
        if child.tag in ("{jabber:client}error", "error"):  # "error": a stanza read alone
            for part in child:
                tag = part.tag if isinstance(part.tag, str) else ""
                if tag == _STANZAS + "text":
                    text = (part.text or "").strip()
                elif tag.startswith(_STANZAS) and not condition:
                    condition = tag[len(_STANZAS) :]
        elif child.get("result") and not code:
            code = child.get("result", "")
            texts: Sequence[str] = [e.text.strip() for e in child if e.text and e.text.strip()]
            details = "; ".join(texts)
    return HubRefused(condition or code or "undefined-condition", text or details)
