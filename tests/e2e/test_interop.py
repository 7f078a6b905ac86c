"""Interop: clients that behave like slixmpp's and Smack's IoT code (digest §8) against hubd.

Neither library's client speaks the current XEP texts: slixmpp's xep_0323/0325
plugins implement the 2014 drafts, Smack parses only ``int`` and ``boolean``
fields and sends ``<bool/>``.  These clients reproduce those behaviours with
raw stanzas, so hubd is held to what real clients need.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from hubd_process import HubdProcess
from iot_client import CTRL, SD
from slixmpp import JID
from xmpp_client import TestClient

SLIXMPP_FIELD_TYPES = {"numeric", "string", "boolean", "dateTime", "timeSpan", "enum"}
SMACK_FIELD_TYPES = {"int", "boolean"}


async def slixmpp_style_readout(
    client: TestClient, to: str, seqnr: int, node: str
) -> dict[str, str]:
    """Like slixmpp's xep_0323 client: iq id = seqnr, stops at done='true' or a failure."""
    iq = client.make_iq_get(ito=JID(to))
    iq["id"] = str(seqnr)
    iq.xml.append(
        fromstring(
            f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'><node nodeId='{node}'/></req>"
        )
    )
    result = await iq.send(timeout=10)
    assert result.xml.find(f"{{{SD}}}accepted") is not None
    values: dict[str, str] = {}
    while True:
        message = await client.wait_message(
            lambda m: any(c.get("seqnr") == str(seqnr) for c in m.xml)
        )
        [element] = [c for c in message.xml if c.get("seqnr") == str(seqnr)]
        if element.tag == f"{{{SD}}}failure":
            raise AssertionError("slixmpp ends the session on the first failure")
        for field in element.iter():
            kind = field.tag.rpartition("}")[2]
            if kind in SLIXMPP_FIELD_TYPES:
                values[field.get("name", "")] = field.get("value", "")
        if element.get("done") == "true":  # a standalone <done/> would never end it
            return values


async def smack_style_readout(client: TestClient, to: str, seqnr: int) -> dict[str, str]:
    """Like Smack: a bare momentary req, waits for fields done='true', parses int/boolean only."""
    iq = client.make_iq_get(ito=JID(to))
    iq.xml.append(fromstring(f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'/>"))
    await iq.send(timeout=10)
    values: dict[str, str] = {}
    while True:
        message = await client.wait_message(
            lambda m: any(
                c.tag == f"{{{SD}}}fields" and c.get("seqnr") == str(seqnr) for c in m.xml
            )
        )
        [element] = [c for c in message.xml if c.tag == f"{{{SD}}}fields"]
        for node in element.findall(f"{{{SD}}}node"):
            for field in node.iter():
                if field.tag.rpartition("}")[2] in SMACK_FIELD_TYPES:
                    values[f"{node.get('nodeId')}.{field.get('name')}"] = field.get("value", "")
        if element.get("done") == "true":
            return values


async def control(client: TestClient, to: str, body: str) -> Element:
    iq = client.make_iq_set(ito=JID(to))
    iq.xml.append(fromstring(f"<set xmlns='{CTRL}'>{body}</set>"))
    result = await iq.send(timeout=10)
    [response] = list(result.xml)
    return response


async def test_slixmpp_style_client_reads_and_sets(hubd: HubdProcess, alice: TestClient) -> None:
    before = await slixmpp_style_readout(alice, hubd.jid, 101, "porch-light")
    assert before["state"] == "false"
    response = await control(
        alice, hubd.jid, "<node nodeId='porch-light'/><boolean name='state' value='true'/>"
    )
    # slixmpp reads responseCode; an empty setResponse gives it '' (digest §8.1).
    assert response.tag == f"{{{CTRL}}}setResponse"
    assert response.get("responseCode") in (None, "OK")
    after = await slixmpp_style_readout(alice, hubd.jid, 102, "porch-light")
    assert after["state"] == "true"


async def test_smack_style_client_reads_and_sets(hubd: HubdProcess, alice: TestClient) -> None:
    before = await smack_style_readout(alice, hubd.jid, 201)
    assert before["porch-light.state"] == "false"
    assert before["front-door.state"] == "false"
    # Smack names no node and writes <bool/>: a unique writable field name is enough...
    response = await control(alice, hubd.jid, "<bool name='state' value='true'/>")
    assert response.tag == f"{{{CTRL}}}setResponse"
    assert len(response) == 0
    after = await smack_style_readout(alice, hubd.jid, 202)
    assert after["porch-light.state"] == "true"
    # ...and NODE.field addresses any node.
    await control(alice, hubd.jid, "<bool name='porch-light.state' value='false'/>")
    final = await smack_style_readout(alice, hubd.jid, 203)
    assert final["porch-light.state"] == "false"
