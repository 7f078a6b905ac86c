# The verbatim XEP examples below are longer than the line limit; they stay verbatim.
# ruff: noqa: E501
"""Golden tests of the client side of the wire (hubd.xmpp.client_xml), hubctl's requests.

The examples are copied verbatim from the digest (XEP-0323 §1.10, the IoT
events ProtoXEP §2.3, XEP-0325 §3.5, XEP-0326 §4.4).  Where an example asks
for more than hubctl ever does (four nodes, three rules), the part hubctl
writes is compared, and the hub's own parser reads back what it was sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree.ElementTree import Element

import pytest
from xep0323_examples import (
    ACCEPTED_1,
    ACCEPTED_4,
    DONE_4,
    FAILURE_2,
    FIELDS_1,
    FIELDS_4,
    REJECTION_3,
    REQ_1,
    REQ_6,
    STARTED_4,
)
from xmlcompare import assert_same_xml, parse, payload

from hubd.core.model import Category
from hubd.errors import HubRefused
from hubd.events.subscriptions import FieldRule
from hubd.xmpp.client_xml import (
    NS_CONCENTRATORS,
    NS_EVENTS,
    BrowsedNode,
    DataSource,
    accepted_queued,
    build_concentrator,
    build_req,
    build_set,
    build_subscribe,
    build_unsubscribe,
    check_result,
    parse_data_sources,
    parse_failure,
    parse_nodes,
    readout_part,
)
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS as HUB_NS_CONCENTRATORS
from hubd.xmpp.control_xml import ControlRequest, parse_set
from hubd.xmpp.events import NS_EVENTS as HUB_NS_EVENTS
from hubd.xmpp.events import parse_subscribe
from hubd.xmpp.hubctl_client import refusal
from hubd.xmpp.sensordata_xml import NodeRef, parse_req

SD = "urn:xmpp:iot:sensordata"

# --- IoT events ProtoXEP §2.3, verbatim ---------------------------------------------------

SUBSCRIBE_4 = """   <iq type='get'
       from='client@clayster.com/amr'
       to='device@clayster.com'
       id='S0004'>
      <subscribe xmlns='urn:xmpp:iot:events' seqnr='1' momentary='true' maxInterval='PT15M' minInterval='PT5S'>
          <field name='Light' changedBy='5'/>
          <field name='Motion' changedBy='1' currentValue='0'/>
          <field name='Temperature'/>
      </subscribe>
   </iq>"""

UNSUBSCRIBE_3 = """   <iq type='get'
       from='client@clayster.com/amr'
       to='device@clayster.com'
       id='S0003'>
      <unsubscribe xmlns='urn:xmpp:iot:events' seqnr='1'/>
   </iq>"""

# --- XEP-0325 §3.5, verbatim ----------------------------------------------------------------

SET_CONCENTRATOR = """<message from='primary@example.org/amr'
  to='concentrator@example.org'>
  <set xmlns='urn:xmpp:iot:control'>
    <node nodeId='DigitalOutput1'/>
    <node nodeId='DigitalOutput2'/>
    <node nodeId='DigitalOutput3'/>
    <node nodeId='DigitalOutput4'/>
    <boolean name='Output' value='false'/>
  </set>
</message>"""

# --- XEP-0326 §4.4, verbatim ----------------------------------------------------------------

DATA_SOURCES_REQUEST = """<iq type='get'
  from='client@example.org/client'
  to='concentrator@example.org'
  id='4'>
  <getAllDataSources xmlns='urn:xmpp:iot:concentrators' xml:lang='en'/>
</iq>"""

DATA_SOURCES = """<iq type='result'
  from='concentrator@example.org'
  to='client@example.org/client'
  id='4'>
  <getAllDataSourcesResponse xmlns='urn:xmpp:iot:concentrators' result='OK'>
    <dataSource sourceId='Applications' name='Applications' hasChildren='false' lastChanged='2013-03-19T17:58:01'/>
    <dataSource sourceId='Certificates' name='Certificates' hasChildren='false' lastChanged='2013-02-20T12:31:54'/>
    <dataSource sourceId='Clayster.EventSink.Programmable' name='Programmable Event Log' hasChildren='false' lastChanged='2012-10-25T09:31:12'/>
    ...
  </getAllDataSourcesResponse>
</iq>"""

CHILD_NODES_REQUEST = """<iq type='get'
  from='client@example.org/client'
  to='concentrator@example.org'
  id='20'>
  <getChildNodes xmlns='urn:xmpp:iot:concentrators' sourceId='MeteringTopology' nodeId='Node1' xml:lang='en'/>
</iq>"""

CHILD_NODES = """<iq type='result'
  from='concentrator@example.org'
  to='client@example.org/client'
  id='20'>
  <getChildNodesResponse xmlns='urn:xmpp:iot:concentrators' result='OK'>
    <node nodeId='Node2' nodeType='Namespace.NodeType2' cacheType='Node' state='None' hasChildren='false'
      isReadable='true' isControllable='true' hasCommands='true' parentId='Root'/>
    <node nodeId='Node3' nodeType='Namespace.NodeType3' cacheType='Node' state='None' hasChildren='false'
      isReadable='true' isControllable='true' hasCommands='true' parentId='Root'/>
  </getChildNodesResponse>
</iq>"""

NOT_IMPLEMENTED = """                  <iq type='error'
                    from='concentrator@example.org'
                    to='client@example.org/client'
                    id='69'>
                    <holabandolaResponse xmlns='urn:xmpp:iot:concentrators' result='NotImplemented'/>
                  </iq>"""

SUBSCRIBE_NOT_IMPLEMENTED = """<iq type='result'
  from='concentrator@example.org'
  to='client@example.org/client'
  id='73'>
  <subscribeResponse xmlns='urn:xmpp:iot:concentrators' result='NotImplemented'/>
</iq>"""

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def _without_lang(stanza: str) -> Element:
    element = payload(stanza)
    element.attrib.pop(XML_LANG, None)
    return element


# --- readout requests and answers ---------------------------------------------------------


def test_momentary_req_is_the_xep_example() -> None:
    assert_same_xml(build_req(1, categories=[Category.MOMENTARY]), payload(REQ_1))


def test_req_of_nodes_and_fields_is_the_xep_example() -> None:
    req = build_req(
        6, nodes=["Device04"], fields=["Energy", "Power"], categories=[Category.MOMENTARY]
    )
    assert_same_xml(req, payload(REQ_6))


def test_default_req_asks_for_every_current_category_and_the_hub_reads_it() -> None:
    parsed = parse_req(build_req(9, nodes=["porch-light"]))
    assert parsed.categories == {
        Category.MOMENTARY,
        Category.PEAK,
        Category.STATUS,
        Category.COMPUTED,
        Category.IDENTITY,
    }
    assert parsed.nodes == (NodeRef("porch-light"),)


def test_historical_req_has_a_period_the_hub_reads() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 2, tzinfo=UTC)
    req = build_req(
        3, nodes=["weather"], fields=["temperature"], historical=True, start=start, end=end
    )
    assert req.get("historical") == "true"
    assert req.get("momentary") is None
    parsed = parse_req(req)
    assert (parsed.from_, parsed.to, parsed.fields) == (start, end, {"temperature"})
    assert Category.HISTORICAL_OTHER in parsed.categories


def test_readout_parts_of_the_xep_flows() -> None:
    fields = readout_part(payload(FIELDS_1))
    assert fields is not None
    assert (fields.kind, fields.seqnr, fields.done) == ("fields", 1, True)
    failure = readout_part(payload(FAILURE_2))
    assert failure is not None
    assert (failure.kind, failure.seqnr, failure.done) == ("failure", 2, True)
    # The scheduled readout: started and fields do not end it; a standalone <done/> does.
    parts = [readout_part(payload(m)) for m in (STARTED_4, FIELDS_4, DONE_4)]
    assert [(p.kind, p.done) for p in parts if p] == [
        ("started", False),
        ("fields", False),
        ("done", True),
    ]


def test_accepted_queued() -> None:
    assert accepted_queued(payload(ACCEPTED_4)) is True
    assert accepted_queued(payload(ACCEPTED_1)) is False
    assert accepted_queued(None) is False  # a hub that skips <accepted/>


def test_failure_text_per_node() -> None:
    [failure] = parse_failure(payload(FAILURE_2))
    assert (failure.node_id, failure.text) == ("Device01", "Timeout.")


@pytest.mark.parametrize(
    "xml",
    [
        f"<fields xmlns='{SD}' seqnr='x'/>",  # a bad seqnr
        f"<fields xmlns='{SD}' seqnr='1' done='maybe'/>",
        f"<accepted xmlns='{SD}' seqnr='1'/>",  # not a message of a readout
        "<fields xmlns='urn:example' seqnr='1'/>",  # another namespace
    ],
)
def test_what_is_no_readout_message_is_ignored(xml: str) -> None:
    assert readout_part(parse(xml)) is None


def test_rejection_and_concentrator_refusals() -> None:
    forbidden = refusal(parse(REJECTION_3))
    assert (forbidden.condition, forbidden.text) == ("forbidden", "Access denied.")
    # XEP-0326's examples carry no <error/>: the result code is the reason.
    assert refusal(parse(NOT_IMPLEMENTED)).condition == "NotImplemented"
    # hubd sends both: the RFC 6120 condition wins, with its text.
    both = parse(
        f"<iq type='error'><getNodeResponse xmlns='{NS_CONCENTRATORS}' result='NotFound'/>"
        "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>No node 'attic'.</text></error></iq>"
    )
    refused = refusal(both)
    assert (refused.condition, refused.text) == ("item-not-found", "No node 'attic'.")
    assert refusal(parse("<iq type='error'/>")).condition == "undefined-condition"


# --- control --------------------------------------------------------------------------------


def test_set_writes_the_xep_elements_and_the_hub_reads_them() -> None:
    example = payload(SET_CONCENTRATOR)
    built = build_set("DigitalOutput1", "boolean", "Output", "false")
    assert built[0].attrib == example[0].attrib
    assert_same_xml(built[1], example[4])
    assert parse_set(built) == ControlRequest((NodeRef("DigitalOutput1"),), (("Output", "false"),))


# --- events ---------------------------------------------------------------------------------


def test_namespaces_are_the_hubs() -> None:
    assert (NS_EVENTS, NS_CONCENTRATORS) == (HUB_NS_EVENTS, HUB_NS_CONCENTRATORS)


def test_unsubscribe_is_the_xep_example() -> None:
    assert_same_xml(build_unsubscribe(1), payload(UNSUBSCRIBE_3))


def test_subscribe_rule_is_the_xep_element_and_the_hub_reads_it() -> None:
    built = build_subscribe(1, "weather", "Light", "5")
    assert_same_xml(built[1], payload(SUBSCRIBE_4)[0])
    seqnr, nodes, options = parse_subscribe(built)
    assert (seqnr, nodes) == (1, (NodeRef("weather"),))
    [rule] = options["rules"]
    assert isinstance(rule, FieldRule)
    assert (rule.name, rule.changed_up, rule.changed_down) == ("Light", 5, 5)


def test_subscribe_without_a_field_covers_every_field() -> None:
    _, nodes, options = parse_subscribe(build_subscribe(2, "front-door"))
    assert nodes == (NodeRef("front-door"),)
    assert options["rules"] == ()


# --- concentrators --------------------------------------------------------------------------


def test_concentrator_requests_are_the_xep_examples() -> None:
    assert_same_xml(build_concentrator("getAllDataSources"), _without_lang(DATA_SOURCES_REQUEST))
    assert_same_xml(
        build_concentrator("getChildNodes", sourceId="MeteringTopology", nodeId="Node1"),
        _without_lang(CHILD_NODES_REQUEST),
    )


def test_data_sources_of_the_xep_example() -> None:
    response = check_result(payload(DATA_SOURCES), "getAllDataSources")
    assert parse_data_sources(response) == [
        DataSource("Applications", "Applications", False),
        DataSource("Certificates", "Certificates", False),
        DataSource("Clayster.EventSink.Programmable", "Programmable Event Log", False),
    ]


def test_child_nodes_of_the_xep_example() -> None:
    response = check_result(payload(CHILD_NODES), "getChildNodes")
    assert parse_nodes(response) == [
        BrowsedNode("Node2", "Node2", "Namespace.NodeType2", "None", False, True, True, "Root"),
        BrowsedNode("Node3", "Node3", "Namespace.NodeType3", "None", False, True, True, "Root"),
    ]


def test_a_result_other_than_ok_is_a_refusal() -> None:
    with pytest.raises(HubRefused, match="NotImplemented"):
        check_result(payload(SUBSCRIBE_NOT_IMPLEMENTED), "subscribe")
    with pytest.raises(HubRefused, match="bad-answer"):
        check_result(payload(CHILD_NODES), "getRootNodes")  # the answer to another question
    with pytest.raises(HubRefused, match="bad-answer"):
        check_result(None, "getRootNodes")
    # No result attribute: OK (liberal on input).
    bare = parse(f"<getRootNodesResponse xmlns='{NS_CONCENTRATORS}'/>")
    assert check_result(bare, "getRootNodes") is bare


def test_bad_flags_in_a_node_list_read_as_false() -> None:
    response = parse(
        f"<getRootNodesResponse xmlns='{NS_CONCENTRATORS}'>"
        "<node nodeId='a' hasChildren='maybe' isReadable='1'/></getRootNodesResponse>"
    )
    [node] = parse_nodes(response)
    assert (node.has_children, node.readable, node.controllable) == (False, True, False)
