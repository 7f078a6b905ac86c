"""XEP-0323/0325/0326 end to end: a real hubd process, a real Prosody, a raw-stanza client."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml.ElementTree import fromstring
from hubd_process import HubdProcess
from iot_client import CONC, CTRL, SD, IqFailure, field_values, iq, readout
from xmpp_client import TestClient

PORCH_ON = (
    f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><boolean name='state' value='true'/></set>"
)


async def test_readout_of_all_nodes(hubd: HubdProcess, alice: TestClient) -> None:
    accepted, payloads = await readout(
        alice, hubd.jid, f"<req xmlns='{SD}' seqnr='1' momentary='true'/>"
    )
    assert accepted.tag == f"{{{SD}}}accepted"
    assert accepted.get("queued") is None
    assert [p.tag for p in payloads] == [f"{{{SD}}}fields"] * 2
    assert [p.get("done") for p in payloads] == [None, "true"]
    values = {**field_values(payloads[0]), **field_values(payloads[1])}
    assert values["porch-light"] == {"state": "false"}
    assert values["front-door"] == {"state": "false"}
    state = payloads[0].find(f".//{{{SD}}}boolean[@name='state']")
    assert state is not None
    assert state.get("writable") == "true"
    assert state.get("automaticReadout") == "true"


async def test_readout_of_one_field_with_status(hubd: HubdProcess, alice: TestClient) -> None:
    _, payloads = await readout(
        alice,
        hubd.jid,
        f"<req xmlns='{SD}' seqnr='2' all='true'>"
        f"<node nodeId='porch-light'/><field name='online'/></req>",
    )
    assert [field_values(p) for p in payloads] == [{"porch-light": {"online": "true"}}]
    assert payloads[0].get("done") == "true"


async def test_readout_of_an_unknown_node_and_bad_requests(
    hubd: HubdProcess, alice: TestClient
) -> None:
    unknown = await iq(alice, hubd.jid, f"<req xmlns='{SD}' seqnr='3'><node nodeId='attic'/></req>")
    assert isinstance(unknown, IqFailure)
    assert (unknown.type, unknown.condition) == ("cancel", "item-not-found")
    assert "attic" in unknown.text
    bad = await iq(alice, hubd.jid, f"<req xmlns='{SD}' seqnr='x' momentary='true'/>")
    assert isinstance(bad, IqFailure)
    assert bad.condition == "bad-request"
    assert "seqnr" in bad.text
    cancel = await iq(alice, hubd.jid, f"<cancel xmlns='{SD}' seqnr='99'/>")
    assert isinstance(cancel, IqFailure)
    assert cancel.condition == "item-not-found"


async def test_set_boolean_then_read_it_back(hubd: HubdProcess, alice: TestClient) -> None:
    response = await iq(
        alice,
        hubd.jid,
        PORCH_ON,
        "set",
    )
    assert isinstance(response, Element)
    assert response.tag == f"{{{CTRL}}}setResponse"
    assert len(response) == 0
    _, payloads = await readout(
        alice, hubd.jid, f"<req xmlns='{SD}' seqnr='4'><node nodeId='porch-light'/></req>"
    )
    assert field_values(payloads[0])["porch-light"]["state"] == "true"
    await hubd.wait_for_log(r"control by alice@localhost/test: porch-light.state = True done")


async def test_set_errors_carry_param_error(hubd: HubdProcess, alice: TestClient) -> None:
    async def set_(body: str) -> IqFailure:
        answer = await iq(
            alice, hubd.jid, f"<set xmlns='{CTRL}'><node nodeId='porch-light'/>{body}</set>", "set"
        )
        assert isinstance(answer, IqFailure)
        return answer

    wrong_type = await set_("<int name='state' value='7'/>")
    assert (wrong_type.type, wrong_type.condition) == ("modify", "bad-request")
    param = wrong_type.xml.find(f".//{{{CTRL}}}paramError")
    assert param is not None
    assert param.get("var") == "state"
    unknown = await set_("<boolean name='colour' value='true'/>")
    assert unknown.condition == "item-not-found"
    param = unknown.xml.find(f".//{{{CTRL}}}paramError")
    assert param is not None
    assert param.get("var") == "colour"
    read_only = await iq(
        alice,
        hubd.jid,
        f"<set xmlns='{CTRL}'><node nodeId='front-door'/>"
        f"<boolean name='state' value='true'/></set>",
        "set",
    )
    assert isinstance(read_only, IqFailure)
    assert read_only.condition == "feature-not-implemented"


async def test_multi_node_set_validates_all_nodes_before_acting(
    hubd: HubdProcess, alice: TestClient
) -> None:
    answer = await iq(
        alice,
        hubd.jid,
        f"<set xmlns='{CTRL}'><node nodeId='porch-light'/><node nodeId='front-door'/>"
        f"<boolean name='state' value='true'/></set>",
        "set",
    )
    assert isinstance(answer, IqFailure)
    assert answer.condition == "feature-not-implemented"  # front-door's state is read-only
    assert "porch-light.state = True done" not in hubd.log()


async def test_get_form(hubd: HubdProcess, alice: TestClient) -> None:
    form = await iq(
        alice, hubd.jid, f"<getForm xmlns='{CTRL}'><node nodeId='porch-light'/></getForm>"
    )
    assert isinstance(form, Element)
    assert form.tag == "{jabber:x:data}x"
    assert form.get("type") == "form"
    [field] = form.findall("{jabber:x:data}field")
    assert (field.get("var"), field.get("type")) == ("state", "boolean")
    assert field.find("{urn:xmpp:xdata:dynamic}notSame") is not None
    merged = await iq(
        alice,
        hubd.jid,
        f"<getForm xmlns='{CTRL}'><node nodeId='porch-light'/>"
        f"<node nodeId='front-door'/></getForm>",
    )
    assert isinstance(merged, IqFailure)
    assert merged.condition == "feature-not-implemented"


async def test_set_in_a_message_gets_no_answer_but_acts(
    hubd: HubdProcess, carol: TestClient, alice: TestClient
) -> None:
    message = carol.make_message(mto=hubd.jid)
    message.xml.append(fromstring(PORCH_ON))
    message.send()
    await hubd.wait_for_log(r"control by carol@localhost/test: porch-light.state = True done")


async def test_concentrator_commands(hubd: HubdProcess, alice: TestClient) -> None:
    caps = await iq(alice, hubd.jid, f"<getCapabilities xmlns='{CONC}'/>")
    assert isinstance(caps, Element)
    assert caps.get("result") == "OK"
    commands = [v.text for v in caps]
    for command in ("getAllDataSources", "getNode", "getAllNodes", "containsNode", "getAncestors"):
        assert command in commands
    sources = await iq(alice, hubd.jid, f"<getAllDataSources xmlns='{CONC}'/>")
    assert isinstance(sources, Element)
    assert [s.get("sourceId") for s in sources] == ["MeteringTopology", "gpio"]
    children = await iq(
        alice, hubd.jid, f"<getChildDataSources xmlns='{CONC}' sourceId='MeteringTopology'/>"
    )
    assert isinstance(children, Element)
    assert [s.get("sourceId") for s in children] == ["gpio"]
    node = await iq(
        alice,
        hubd.jid,
        f"<getNode xmlns='{CONC}' sourceId='gpio' nodeId='porch-light' parameters='true'/>",
    )
    assert isinstance(node, Element)
    assert node.get("result") == "OK"
    assert node.get("nodeType") == "gpio.output"
    assert node.get("isControllable") == "true"
    assert node.get("state") == "None"
    params = {p.get("id"): p.get("value") for p in node}
    assert params["pin"] == "17"
    nodes = await iq(alice, hubd.jid, f"<getAllNodes xmlns='{CONC}' sourceId='gpio'/>")
    assert isinstance(nodes, Element)
    assert [n.get("nodeId") for n in nodes] == ["porch-light", "front-door"]
    contains = await iq(
        alice, hubd.jid, f"<containsNode xmlns='{CONC}' sourceId='gpio' nodeId='attic'/>"
    )
    assert isinstance(contains, Element)
    assert contains.text == "false"
    missing = await iq(alice, hubd.jid, f"<getNode xmlns='{CONC}' sourceId='gpio' nodeId='attic'/>")
    assert isinstance(missing, IqFailure)
    assert missing.condition == "item-not-found"
    response = missing.xml.find(f"{{{CONC}}}getNodeResponse")
    assert response is not None
    assert response.get("result") == "NotFound"
    destroy = await iq(
        alice,
        hubd.jid,
        f"<destroyNode xmlns='{CONC}' sourceId='gpio' nodeId='porch-light'/>",
        "set",
    )
    assert isinstance(destroy, IqFailure)
    assert destroy.condition == "feature-not-implemented"
    response = destroy.xml.find(f"{{{CONC}}}destroyNodeResponse")
    assert response is not None
    assert response.get("result") == "NotImplemented"


STRANGER_REQUESTS = [
    (f"<req xmlns='{SD}' seqnr='1' momentary='true'/>", "get"),
    (f"<req xmlns='{SD}' seqnr='2'><node nodeId='no-such-node'/></req>", "get"),
    (
        PORCH_ON,
        "set",
    ),
    (f"<getForm xmlns='{CTRL}'><node nodeId='porch-light'/></getForm>", "get"),
    (f"<getNode xmlns='{CONC}' sourceId='gpio' nodeId='porch-light'/>", "get"),
    (f"<getNode xmlns='{CONC}' sourceId='gpio' nodeId='no-such-node'/>", "get"),
    (f"<getAllDataSources xmlns='{CONC}'/>", "get"),
]


async def test_a_stranger_is_refused_everything_and_learns_nothing(
    hubd: HubdProcess, mallory: TestClient
) -> None:
    answers = [await iq(mallory, hubd.jid, xml, kind) for xml, kind in STRANGER_REQUESTS]
    for answer in answers:
        assert isinstance(answer, IqFailure), answer
        assert (answer.type, answer.condition, answer.text) == (
            "cancel",
            "forbidden",
            "Access denied.",
        )
    # An unknown node and a known one get the very same answer.
    assert answers[4].xml.find(f"{{{CONC}}}getNodeResponse") is not None
    assert answers[5].xml.find(f"{{{CONC}}}getNodeResponse") is not None


async def test_a_reader_may_read_but_not_control(hubd: HubdProcess, bob: TestClient) -> None:
    _, payloads = await readout(
        bob, hubd.jid, f"<req xmlns='{SD}' seqnr='5'><node nodeId='front-door'/></req>"
    )
    assert "front-door" in field_values(payloads[-1])
    refused = await iq(
        bob,
        hubd.jid,
        PORCH_ON,
        "set",
    )
    assert isinstance(refused, IqFailure)
    assert refused.condition == "forbidden"
