"""HTTP File Upload (XEP-0363): how the hub shares a chart with a person's client.

The service is the one named in ``uploads: {service:}``, or else the first
item of the server's disco#items whose disco#info has the feature
``urn:xmpp:http:upload:0``; its advertised ``max-file-size`` is kept and a
larger file is refused before any request.  A file goes up in two steps: a
slot request (an IQ to the service, answered with a PUT and a GET URL), then
an HTTP PUT of the bytes.  The PUT uses the standard library's
``http.client`` on a worker thread (nothing else in hubd's dependencies
speaks HTTP), bounded by a timeout, verifying the certificate against the
system's trust store plus ``xmpp.ca_file``.

Errors become :class:`~hubd.errors.UploadUnavailable` (no service) and
:class:`~hubd.errors.UploadRefused` (too large, over quota, not allowed),
with words a person can act on.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from hubd.errors import UploadError, UploadRefused, UploadUnavailable

_LOGGER = logging.getLogger(__name__)

NS_UPLOAD = "urn:xmpp:http:upload:0"
NS_DATA = "jabber:x:data"
#: Seconds for one disco or slot request, and for the whole HTTP PUT.
IQ_TIMEOUT = 10.0
PUT_TIMEOUT = 20.0
#: The only slot headers a client may pass on (XEP-0363 §6).
ALLOWED_HEADERS = frozenset({"authorization", "cookie", "expires"})


@dataclass(frozen=True, slots=True)
class UploadService:
    """A service that takes uploads, and the largest file it accepts (None: not said)."""

    jid: str
    max_size: int | None


@dataclass(frozen=True, slots=True)
class Slot:
    """Where to PUT a file (with which headers), and where it can then be fetched."""

    put: str
    get: str
    headers: dict[str, str]


def max_file_size(info: Element) -> int | None:
    """The ``max-file-size`` of a disco#info query's XEP-0363 form, if it has one."""
    for form in info.iter(f"{{{NS_DATA}}}x"):
        fields = {f.get("var"): f.findtext(f"{{{NS_DATA}}}value") for f in form}
        if fields.get("FORM_TYPE") == NS_UPLOAD and fields.get("max-file-size"):
            try:
                return int(str(fields["max-file-size"]))
            except ValueError:
                return None
    return None


def parse_slot(slot: Element) -> Slot:
    """The PUT and GET URLs of a ``<slot/>`` (UploadRefused if it lacks them)."""
    put = slot.find(f"{{{NS_UPLOAD}}}put")
    get = slot.find(f"{{{NS_UPLOAD}}}get")
    if put is None or get is None or not put.get("url") or not get.get("url"):
        raise UploadRefused("the server's upload slot had no URLs")
    headers = {
        h.get("name", ""): (h.text or "").replace("\n", "")
        for h in put.findall(f"{{{NS_UPLOAD}}}header")
        if h.get("name", "").lower() in ALLOWED_HEADERS
    }
    return Slot(put.get("url", ""), get.get("url", ""), headers)


def refusal(err: IqError) -> UploadRefused:
    """Words for a slot request the service refused (XEP-0363 §5)."""
    condition = err.condition
    xml = err.iq.xml
    largest = xml.findtext(f".//{{{NS_UPLOAD}}}max-file-size")
    if condition == "not-acceptable" and largest:
        return UploadRefused(f"the file is too large (the server takes at most {largest} bytes)")
    if condition == "resource-constraint":
        return UploadRefused("the hub's upload quota is used up for now")
    if condition in ("not-allowed", "forbidden"):
        return UploadRefused("the server does not let the hub's account upload files")
    text = err.text or condition
    return UploadRefused(f"{text}")


class HttpUpload:
    """Shares files through the hub's server (implements hubd.people's FileSharing)."""

    def __init__(
        self, xmpp: ClientXMPP, service: str | None = None, ca_file: Path | None = None
    ) -> None:
        self.xmpp = xmpp
        self.configured = service
        self.ca_file = ca_file
        self._service: UploadService | None = None
        xmpp.add_event_handler("session_start", self._forget)

    def _forget(self, _event: Any) -> None:
        """A new session may be on a server with another service: ask again."""
        self._service = None

    async def service(self) -> UploadService:
        """The upload service (found once per session)."""
        if self._service is None:
            self._service = await self._discover()
            _LOGGER.info(
                "HTTP File Upload: %s (max %s bytes)", self._service.jid, self._service.max_size
            )
        return self._service

    async def _discover(self) -> UploadService:
        if self.configured is not None:
            found = await self._probe(self.configured)
            if found is None:
                raise UploadUnavailable(f"{self.configured} does not offer HTTP File Upload")
            return found
        domain = self.xmpp.boundjid.domain
        try:
            items = await self._iq_query(domain, "http://jabber.org/protocol/disco#items")
        except UploadError:
            items = None
        candidates = [domain]
        if items is not None:
            candidates[:0] = [
                item.get("jid", "")
                for item in items.findall("{http://jabber.org/protocol/disco#items}item")
                if item.get("jid") and not item.get("node")
            ]
        for jid in candidates:
            found = await self._probe(jid)
            if found is not None:
                return found
        raise UploadUnavailable(f"the server {domain} offers no file upload")

    async def _probe(self, jid: str) -> UploadService | None:
        try:
            info = await self._iq_query(jid, "http://jabber.org/protocol/disco#info")
        except UploadError:
            return None
        features = {
            f.get("var") for f in info.findall("{http://jabber.org/protocol/disco#info}feature")
        }
        if NS_UPLOAD not in features:
            return None
        return UploadService(jid, max_file_size(info))

    async def _iq_query(self, to: str, namespace: str) -> Element:
        iq: Any = self.xmpp.make_iq_get(ito=to)  # slixmpp's Iq.send is untyped
        iq.xml.append(Element(f"{{{namespace}}}query"))
        try:
            answer = await iq.send(timeout=IQ_TIMEOUT)
        except (IqError, IqTimeout) as err:
            raise UploadUnavailable(f"{to} did not answer disco") from err
        query: Element | None = answer.xml.find(f"{{{namespace}}}query")
        if query is None:
            raise UploadUnavailable(f"{to} sent an empty disco answer")
        return query

    async def share(self, data: bytes, filename: str, content_type: str) -> str:
        """Upload ``data``; return the URL it can be fetched from."""
        service = await self.service()
        if service.max_size is not None and len(data) > service.max_size:
            raise UploadRefused(
                f"the file is too large ({len(data)} bytes; the server takes at most"
                f" {service.max_size})"
            )
        slot = await self._slot(service.jid, filename, len(data), content_type)
        await asyncio.to_thread(self._put, slot, data, content_type)
        _LOGGER.info("uploaded %s (%d bytes) to %s", filename, len(data), service.jid)
        return slot.get

    async def _slot(self, service: str, filename: str, size: int, content_type: str) -> Slot:
        iq: Any = self.xmpp.make_iq_get(ito=service)  # slixmpp's Iq.send is untyped
        request = Element(f"{{{NS_UPLOAD}}}request")
        request.set("filename", filename)
        request.set("size", str(size))
        request.set("content-type", content_type)
        iq.xml.append(request)
        try:
            answer = await iq.send(timeout=IQ_TIMEOUT)
        except IqError as err:
            raise refusal(err) from err
        except IqTimeout as err:
            raise UploadError(f"{service} gave no upload slot within {IQ_TIMEOUT:g} s") from err
        slot = answer.xml.find(f"{{{NS_UPLOAD}}}slot")
        if slot is None:
            raise UploadRefused("the server's answer had no upload slot")
        return parse_slot(slot)

    def _put(self, slot: Slot, data: bytes, content_type: str) -> None:
        """HTTP PUT the file (on a worker thread)."""
        url = urlsplit(slot.put)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise UploadRefused(f"the server's upload address is not HTTP: {slot.put[:80]}")
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            context = ssl.create_default_context()
            if self.ca_file is not None:
                context.load_verify_locations(cafile=str(self.ca_file))
            connection = http.client.HTTPSConnection(
                url.hostname, url.port, timeout=PUT_TIMEOUT, context=context
            )
        else:
            connection = http.client.HTTPConnection(url.hostname, url.port, timeout=PUT_TIMEOUT)
        path = url.path + (f"?{url.query}" if url.query else "")
        headers = {**slot.headers, "Content-Type": content_type, "Content-Length": str(len(data))}
        try:
            connection.request("PUT", path or "/", body=data, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as err:
            raise UploadError(f"the upload to {url.hostname} failed: {err}") from err
        finally:
            connection.close()
        if response.status == 413:
            raise UploadRefused("the file is too large for the server")
        if response.status in (401, 403):
            raise UploadRefused("the server did not accept the upload (HTTP 403)")
        if not 200 <= response.status < 300:
            raise UploadError(f"the upload server answered HTTP {response.status}")
