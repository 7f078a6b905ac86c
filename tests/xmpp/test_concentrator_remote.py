"""Remote hubs in XEP-0326: reading a remote's answer, and answering for a remote's source.

The remote's answer is in the shape of the XEP's ``getAllNodesResponse``
example (Example 29: nodes with ``nodeId``, ``displayName``, ``nodeType``,
``state``, ``hasChildren``, ``isReadable``, ``isControllable``,
``lastChanged``); bad answers are refused whole, never half taken.
"""

from __future__ import annotations

from datetime import datetime
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from hubd.core.access import AccessPolicy
from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteNode, RemoteSource, RemoteSources
from hubd.errors import BadRequest
from hubd.xmpp.concentrator_remote import (
    RemoteBrowse,
    build_get_all_nodes,
    parse_remote_nodes,
    remote_node_attributes,
)
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS

C = "{" + NS_CONCENTRATORS + "}"

EXAMPLE = f"""
<getAllNodesResponse xmlns='{NS_CONCENTRATORS}' result='OK'>
  <node nodeId='Node1' displayName='Node 1' nodeType='Namespace.NodeType1' cacheType='Node'
        state='None' hasChildren='false' isReadable='true' isControllable='true'
        hasCommands='true' parentId='Root' lastChanged='2013-03-19T17:58:01Z'/>
  <node nodeId='Node2' displayName='Node 2' nodeType='Namespace.NodeType2' cacheType='Node'
        state='ErrorUnsigned' hasChildren='false' isReadable='true' isControllable='false'
        hasCommands='true' parentId='Root' lastChanged='2013-03-19T17:58:01Z'>
    <message timestamp='2013-03-19T17:58:01Z' type='Error'>Sensor does not respond.</message>
  </node>
</getAllNodesResponse>
"""


def test_request_asks_the_remote_root_with_messages() -> None:
    request = build_get_all_nodes()
    assert request.tag == f"{C}getAllNodes"
    assert request.attrib == {
        "sourceId": "MeteringTopology",
        "parameters": "false",
        "messages": "true",
    }


def test_the_xep_example_answer_is_read() -> None:
    nodes = parse_remote_nodes(fromstring(EXAMPLE))
    assert [n.node_id for n in nodes] == ["Node1", "Node2"]
    first, second = nodes
    assert first == RemoteNode(
        node_id="Node1",
        name="Node 1",
        node_type="Namespace.NodeType1",
        state="None",
        readable=True,
        controllable=True,
        last_changed=datetime.fromisoformat("2013-03-19T17:58:01+00:00"),
        message=None,
    )
    assert (second.state, second.controllable, second.message) == (
        "ErrorUnsigned",
        False,
        "Sensor does not respond.",
    )
    attrs = remote_node_attributes(first, "garage")
    assert attrs["sourceId"] == "garage"
    assert attrs["lastChanged"] == "2013-03-19T17:58:01Z"
    assert attrs["isControllable"] == "true"


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (f"<getNodeResponse xmlns='{NS_CONCENTRATORS}' result='OK'/>", "not a getAllNodesResponse"),
        (f"<getAllNodesResponse xmlns='{NS_CONCENTRATORS}' result='NotFound'/>", "NotFound"),
        (
            f"<getAllNodesResponse xmlns='{NS_CONCENTRATORS}'><node/></getAllNodesResponse>",
            "nodeId",
        ),
        (
            f"<getAllNodesResponse xmlns='{NS_CONCENTRATORS}'>"
            "<node nodeId='a' isReadable='maybe'/></getAllNodesResponse>",
            "node 'a'",
        ),
        (
            f"<getAllNodesResponse xmlns='{NS_CONCENTRATORS}'>"
            "<node nodeId='a' lastChanged='yesterday'/></getAllNodesResponse>",
            "xs:dateTime",
        ),
    ],
)
def test_bad_answers_are_refused(xml: str, problem: str) -> None:
    with pytest.raises(BadRequest, match=problem):
        parse_remote_nodes(fromstring(xml))


def test_too_many_nodes_are_refused() -> None:
    nodes = "".join(f"<node nodeId='n{i}'/>" for i in range(1001))
    with pytest.raises(BadRequest, match="more than 1000"):
        parse_remote_nodes(
            fromstring(
                f"<getAllNodesResponse xmlns='{NS_CONCENTRATORS}'>{nodes}</getAllNodesResponse>"
            )
        )


def _sources() -> RemoteSources:
    sources = RemoteSources([RemoteSettings(id="garage", jid="garage@example.org/hubd")])
    source = sources.get("garage")
    assert source is not None
    source.replace_nodes(parse_remote_nodes(fromstring(EXAMPLE)))
    return sources


def _ask(browse: RemoteBrowse, xml: str, viewer: str = "bob@example.org/phone") -> Element:
    request = fromstring(xml)
    command = request.tag.removeprefix(C)
    assert browse.handles(command, request)
    answer = browse.handle(viewer, command, request)
    return answer.payload


def test_browse_answers_for_the_remote_source() -> None:
    browse = RemoteBrowse(_sources(), AccessPolicy(readers=["bob@example.org"]))
    listed = _ask(browse, f"<getAllNodes xmlns='{NS_CONCENTRATORS}' sourceId='garage'/>")
    assert [n.get("nodeId") for n in listed] == ["Node1", "Node2"]
    node = _ask(
        browse,
        f"<getNode xmlns='{NS_CONCENTRATORS}' sourceId='garage' nodeId='Node2' messages='true'/>",
    )
    assert node.get("result") == "OK"
    assert node[0].text == "Sensor does not respond."
    both = _ask(
        browse,
        f"<containsNodes xmlns='{NS_CONCENTRATORS}'><node sourceId='garage' nodeId='Node1'/>"
        "<node sourceId='garage' nodeId='Node9'/></containsNodes>",
    )
    assert [v.text for v in both] == ["true", "false"]
    assert not browse.handles(
        "getAllNodes", fromstring(f"<getAllNodes xmlns='{NS_CONCENTRATORS}' sourceId='gpio'/>")
    )


def test_only_hub_wide_readers_see_a_remote() -> None:
    browse = RemoteBrowse(_sources(), AccessPolicy(readers=["bob@example.org"]))
    assert browse.data_sources("mallory@example.org/x") == []
    request = fromstring(f"<getAllNodes xmlns='{NS_CONCENTRATORS}' sourceId='garage'/>")
    answer = browse.handle("mallory@example.org/x", "getAllNodes", request)
    assert answer.payload.get("result") == "NotFound"
    assert answer.error is not None
    assert answer.error.condition == "item-not-found"
    [source] = browse.data_sources("bob@example.org/phone")
    assert source.get("sourceId") == "garage"


def test_offline_shows_the_nodes_with_the_reason_and_says_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = RemoteSource(RemoteSettings(id="garage", jid="garage@example.org/hubd"))
    assert source.nodes() == []
    source.replace_nodes([RemoteNode("door", "Door", "gpio.input")])
    assert source.online
    assert source.set_offline("the remote hub went offline")
    assert not source.set_offline("the remote hub went offline")  # not news: not logged again
    [door] = source.nodes()
    assert (door.state, door.message) == ("ErrorUnsigned", "garage: the remote hub went offline")
    assert sum("offline" in r.getMessage() for r in caplog.records) == 1
    source.replace_nodes([RemoteNode("door", "Door", "gpio.input")])
    assert source.node("door") == RemoteNode("door", "Door", "gpio.input")


def test_remotes_are_found_by_full_jid() -> None:
    sources = RemoteSources([RemoteSettings(id="garage", jid="Garage@Example.org/hubd")])
    assert sources.by_jid("garage@EXAMPLE.org/hubd") is sources.get("garage")
    assert sources.by_jid("garage@example.org/other") is None
    assert "garage" in sources
    assert len(sources) == 1
