"""Talk XEP-0323/0325/0326 with raw stanzas from a plain slixmpp test client.

Deliberately not hubd's code: requests are written as XML text, answers are
read as ElementTree elements, the way an independent program would.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from slixmpp import JID
from slixmpp.exceptions import IqError
from xmpp_client import TestClient

SD = "urn:xmpp:iot:sensordata"
CTRL = "urn:xmpp:iot:control"
CONC = "urn:xmpp:iot:concentrators"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


@dataclass
class IqFailure:
    """An IQ error as a client sees it."""

    type: str
    condition: str
    text: str
    xml: Element


async def iq(client: TestClient, to: str, xml: str, kind: str = "get") -> Element | IqFailure:
    """Send ``xml`` in an IQ of type ``kind``; return the result's payload or the error."""
    stanza = client.make_iq(ito=JID(to), itype=kind)
    stanza.xml.append(fromstring(xml))
    try:
        result = await stanza.send(timeout=10)
    except IqError as err:
        error = err.iq["error"]
        return IqFailure(error["type"], error["condition"], error["text"], err.iq.xml)
    children = list(result.xml)
    return children[0] if children else result.xml


async def readout(client: TestClient, to: str, xml: str) -> tuple[Element, list[Element]]:
    """Run a readout; return the ``accepted`` element and every message payload up to done."""
    accepted = await iq(client, to, xml)
    assert isinstance(accepted, Element), accepted
    seqnr = accepted.get("seqnr")
    payloads: list[Element] = []
    while True:
        message = await client.wait_message(
            lambda m: any(c.get("seqnr") == seqnr and c.tag.startswith("{" + SD) for c in m.xml)
        )
        element = next(c for c in message.xml if c.tag.startswith("{" + SD))
        payloads.append(element)
        if element.get("done") == "true" or element.tag == f"{{{SD}}}done":
            return accepted, payloads


def field_values(fields: Element) -> dict[str, dict[str, str]]:
    """``{node: {field: value}}`` from a ``<fields/>`` element."""
    out: dict[str, dict[str, str]] = {}
    for node in fields.findall(f"{{{SD}}}node"):
        values = out.setdefault(node.get("nodeId", ""), {})
        for stamp in node.findall(f"{{{SD}}}timestamp"):
            for field in stamp:
                values[field.get("name", "")] = field.get("value", "")
    return out
