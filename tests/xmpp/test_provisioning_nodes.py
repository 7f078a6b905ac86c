"""XEP-0324 narrowing on remote hubs' nodes: a provisioning answer's nodes as this hub names them.

XEP-0324 names a node by ``nodeId``, ``sourceId`` and ``cacheType``.  A
``<node nodeId sourceId>`` whose ``sourceId`` is a remote hub's id
(``remotes:``) is that remote's node, ``garage/door`` in the access checks;
without a ``sourceId``, or with one of this hub's own sources, it is this
hub's own node, and never a remote's of the same id.  The answers are shaped
like the XEP's (digest §5, example 16's ``canReadResponse``).
"""

from __future__ import annotations

import pytest
from xmlcompare import assert_same_xml, parse, payload

from hubd.core.access import AccessPolicy, Provisioned, Role
from hubd.core.remote_settings import RemoteSettings
from hubd.core.remote_source import RemoteNode, RemoteSources
from hubd.errors import AccessDenied, UnknownParameter
from hubd.xmpp.concentrator_remote import RemoteBrowse
from hubd.xmpp.concentrator_xml import NS_CONCENTRATORS
from hubd.xmpp.control_xml import NS_DATA_FORMS
from hubd.xmpp.provisioning import NS_PROVISIONING, node_keys
from hubd.xmpp.remote_control import narrow_form
from hubd.xmpp.remote_sensordata import narrowed
from hubd.xmpp.sensordata_xml import NS_SENSORDATA

REMOTES = frozenset({"garage", "shed"})
OWN = frozenset({"MeteringTopology", "gpio", "serial"})

#: XEP-0324 example 16's answer, narrowed to nodes of two sources and no source.
CAN_READ = f"""<iq type='result'
  from='provisioning.example.org'
  to='device@example.org/device'
  id='16'>
  <canReadResponse xmlns='{NS_PROVISIONING}' jid='primary@example.org' momentary='true'
    result='true'>
    <node nodeId='door' sourceId='garage'/>
    <node nodeId='weather' sourceId='garage' cacheType='remote'/>
    <node nodeId='porch-light'/>
    <node nodeId='front-door' sourceId='gpio'/>
    <field name='Energy'/>
    <field name='Power'/>
  </canReadResponse>
</iq>"""

CAN_CONTROL = f"""<iq type='result'
  from='provisioning.example.org'
  to='device@example.org/device'
  id='17'>
  <canControlResponse xmlns='{NS_PROVISIONING}' jid='primary@example.org' result='true'>
    <node nodeId='light' sourceId='garage'/>
    <parameter name='state'/>
  </canControlResponse>
</iq>"""


def test_a_remote_sourceid_maps_to_the_front_hubs_key() -> None:
    assert node_keys(payload(CAN_READ), REMOTES, OWN) == {
        "garage/door",
        "garage/weather",
        "porch-light",  # no sourceId: the hub's own
        "front-door",  # one of the hub's own sources: its own node, by its unique id
    }
    assert node_keys(payload(CAN_CONTROL), REMOTES, OWN) == {"garage/light"}


def test_no_node_listed_narrows_nothing_and_a_nodeless_node_opens_nothing() -> None:
    yes = parse(f"<canReadResponse xmlns='{NS_PROVISIONING}' jid='a@b' result='true'/>")
    assert node_keys(yes, REMOTES, OWN) is None
    assert node_keys(None, REMOTES, OWN) is None
    blank = parse(
        f"<canReadResponse xmlns='{NS_PROVISIONING}' jid='a@b' result='true'>"
        "<node sourceId='garage'/></canReadResponse>"
    )
    assert node_keys(blank, REMOTES, OWN) == frozenset()


def test_a_node_without_sourceid_never_opens_the_remotes_node_of_that_id() -> None:
    only_door = parse(
        f"<canReadResponse xmlns='{NS_PROVISIONING}' jid='a@b' result='true'>"
        "<node nodeId='door'/></canReadResponse>"
    )
    answer = Provisioned(reads=True, controls=False, read_nodes=node_keys(only_door, REMOTES, OWN))
    assert answer.role_on("door") is Role.READER
    assert answer.role_on("garage/door") is Role.STRANGER


def test_a_source_of_neither_hub_names_no_node_here() -> None:
    other = parse(
        f"<canReadResponse xmlns='{NS_PROVISIONING}' jid='a@b' result='true'>"
        "<node nodeId='door' sourceId='attic'/></canReadResponse>"
    )
    keys = node_keys(other, REMOTES, OWN)
    assert keys == {"attic/door"}  # no remote attic: it matches no node of this hub
    answer = Provisioned(reads=True, controls=False, read_nodes=keys)
    assert answer.role_on("door") is Role.STRANGER


DORA = "dora@example.org/phone"


@pytest.fixture
def policy() -> AccessPolicy:
    access = AccessPolicy(owners=["alice@example.org"])
    access.grant_provisioned(
        "dora@example.org",
        Provisioned(
            reads=True,
            controls=True,
            read_nodes=frozenset({"garage/weather"}),
            read_fields=frozenset({"temperature"}),
            control_nodes=frozenset({"garage/light"}),
            parameters=frozenset({"state"}),
        ),
    )
    return access


def test_the_policy_narrows_remote_nodes_by_their_keys(policy: AccessPolicy) -> None:
    assert policy.allows(DORA, Role.READER, "garage/weather")
    assert not policy.allows(DORA, Role.CONTROLLER, "garage/weather")
    assert policy.allows(DORA, Role.CONTROLLER, "garage/light")
    assert not policy.allows(DORA, Role.READER, "garage/door")
    assert not policy.allows(DORA, Role.READER, "weather")  # this hub's own node of that id
    assert policy.fields_for(DORA, "garage/weather", Role.READER) == {"temperature"}
    assert policy.fields_for(DORA, "garage/light", Role.READER) == {"state"}
    assert policy.fields_for("alice@example.org/x", "garage/weather", Role.READER) is None


def test_a_parameter_left_out_is_refused_or_unknown(policy: AccessPolicy) -> None:
    policy.check_parameter(DORA, "garage/light", "state")
    with pytest.raises(UnknownParameter):  # not even readable: like a missing field
        policy.check_parameter(DORA, "garage/light", "online")
    policy.check_parameter("alice@example.org/x", "garage/light", "online")


def test_a_readable_parameter_left_out_of_control_is_forbidden() -> None:
    access = AccessPolicy()
    access.grant_provisioned(
        "dora@example.org",
        Provisioned(
            reads=True,
            controls=True,
            control_nodes=frozenset({"garage/light"}),
            parameters=frozenset({"state"}),
        ),
    )
    with pytest.raises(AccessDenied):
        access.check_parameter(DORA, "garage/light", "level")


#: A remote's answer node as this hub relabels it: XEP-0323 example 1's shape, two fields.
REMOTE_NODE = f"""<node xmlns='{NS_SENSORDATA}' nodeId='weather' sourceId='garage'>
  <timestamp value='2013-03-07T16:24:30'>
    <numeric name='temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>
    <numeric name='humidity' momentary='true' automaticReadout='true' value='51' unit='%'/>
  </timestamp>
  <timestamp value='2013-03-07T16:24:31'>
    <boolean name='online' status='true' value='true'/>
  </timestamp>
</node>"""


def test_a_remote_readout_keeps_only_the_fields_named() -> None:
    node = parse(REMOTE_NODE)
    assert narrowed(node, None) is node
    assert_same_xml(
        narrowed(node, frozenset({"temperature"})),
        parse(
            f"<node xmlns='{NS_SENSORDATA}' nodeId='weather' sourceId='garage'>"
            "<timestamp value='2013-03-07T16:24:30'>"
            "<numeric name='temperature' momentary='true' automaticReadout='true'"
            " value='23.4' unit='°C'/></timestamp></node>"
        ),
    )
    assert len(node.findall(f"{{{NS_SENSORDATA}}}timestamp")) == 2, "the original is kept"


#: A remote's XEP-0325 control form (XEP-0004), two parameters.
FORM = f"""<x xmlns='{NS_DATA_FORMS}' type='form'>
  <title>Garage light</title>
  <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:iot:control</value></field>
  <field var='state' type='boolean' label='state'><value>false</value></field>
  <field var='level' type='text-single' label='level'><value>0</value></field>
</x>"""


def test_a_remote_control_form_keeps_only_the_parameters_named() -> None:
    form = parse(FORM)
    narrow_form(form, [frozenset({"state"}), None])
    assert [f.get("var") for f in form.findall(f"{{{NS_DATA_FORMS}}}field")] == [
        "FORM_TYPE",
        "state",
    ]
    untouched = parse(FORM)
    narrow_form(untouched, [None])
    assert len(untouched.findall(f"{{{NS_DATA_FORMS}}}field")) == 3


def test_browse_of_a_remote_shows_only_the_nodes_provisioned() -> None:
    sources = RemoteSources([RemoteSettings(id="garage", jid="garage@example.org/hubd")])
    garage = sources.get("garage")
    assert garage is not None
    garage.replace_nodes(
        [RemoteNode(node_id=n, name=n, node_type="gpio.input") for n in ("door", "weather")]
    )
    access = AccessPolicy()
    access.grant_provisioned(
        "dora@example.org",
        Provisioned(reads=True, controls=False, read_nodes=frozenset({"garage/weather"})),
    )
    browse = RemoteBrowse(sources, access)
    [source] = browse.data_sources(DORA)
    assert source.get("sourceId") == "garage"
    listed = browse.handle(
        DORA, "getAllNodes", parse(f"<getAllNodes xmlns='{NS_CONCENTRATORS}' sourceId='garage'/>")
    )
    assert [n.get("nodeId") for n in listed.payload] == ["weather"]
    door = browse.handle(
        DORA,
        "getNode",
        parse(f"<getNode xmlns='{NS_CONCENTRATORS}' sourceId='garage' nodeId='door'/>"),
    )
    assert door.error is not None
    assert door.error.condition == "item-not-found"
    assert browse.data_sources("erin@example.org/x") == []
