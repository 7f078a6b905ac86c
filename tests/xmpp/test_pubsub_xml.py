"""Golden wire formats of the hub's pubsub requests, against XEP-0060's own examples.

Each example stanza is copied from XEP-0060 (version 1.26); where hubd sends
a subset (its forms carry single values), the example's fields are passed in
and the whole payload must come out the same.  The ``iot`` item payload is
compared with what a momentary readout builds for the same values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from xml.etree.ElementTree import Element

from xmlcompare import assert_same_xml, parse, payload

from hubd.core.model import Category, FieldSpec, FieldType, FieldValue, Quality
from hubd.xmpp import pubsub_xml as wire
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, NodeReadings, NodeRef, build_fields

PUBLISH_WITH_OPTIONS = """
<iq type='set' from='hamlet@denmark.lit/blogbot' to='pubsub.shakespeare.lit' id='pub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='princely_musings'>
      <item id='ae890ac52d0df67ed7cfdf51b644e901'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title>Soliloquy</title>
          <link rel='alternate' type='text/html' href='http://denmark.lit/2003/12/13/atom03'/>
          <id>tag:denmark.lit,2003:entry-32397</id>
          <published>2003-12-13T18:30:02Z</published>
          <updated>2003-12-13T18:30:02Z</updated>
        </entry>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#access_model'>
          <value>presence</value>
        </field>
      </x>
    </publish-options>
  </pubsub>
</iq>
"""

# "Entity requests a new node with non-default configuration." (§8.1.3)
CREATE_CONFIGURED = """
<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <create node='princely_musings'/>
    <configure>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#node_config</value>
        </field>
        <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
        <field var='pubsub#deliver_notifications'><value>1</value></field>
        <field var='pubsub#deliver_payloads'><value>1</value></field>
        <field var='pubsub#persist_items'><value>1</value></field>
        <field var='pubsub#max_items'><value>10</value></field>
        <field var='pubsub#item_expire'><value>604800</value></field>
        <field var='pubsub#access_model'><value>open</value></field>
        <field var='pubsub#publish_model'><value>publishers</value></field>
        <field var='pubsub#purge_offline'><value>0</value></field>
        <field var='pubsub#send_last_published_item'><value>never</value></field>
        <field var='pubsub#presence_based_delivery'><value>false</value></field>
        <field var='pubsub#notification_type'><value>headline</value></field>
        <field var='pubsub#notify_config'><value>0</value></field>
        <field var='pubsub#notify_delete'><value>0</value></field>
        <field var='pubsub#notify_retract'><value>0</value></field>
        <field var='pubsub#notify_sub'><value>0</value></field>
        <field var='pubsub#max_payload_size'><value>1028</value></field>
        <field var='pubsub#type'><value>urn:example:e2ee:bundle</value></field>
        <field var='pubsub#body_xslt'>
          <value>http://jabxslt.jabberstudio.org/atom_body.xslt</value>
        </field>
      </x>
    </configure>
  </pubsub>
</iq>
"""

# "Owner submits node configuration form" (§8.2.4), its multi-valued
# pubsub#roster_groups_allowed left out (hubd's forms carry single values).
CONFIGURE = """
<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure node='princely_musings'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#node_config</value>
        </field>
        <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
        <field var='pubsub#persist_items'><value>1</value></field>
        <field var='pubsub#max_items'><value>10</value></field>
        <field var='pubsub#access_model'><value>roster</value></field>
        <field var='pubsub#publish_model'><value>publishers</value></field>
      </x>
    </configure>
  </pubsub>
</iq>
"""

ITEMS_REQUEST = """
<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='princely_musings'/>
  </pubsub>
</iq>
"""

ITEMS_RESULT = """
<iq type='result' from='pubsub.shakespeare.lit' to='francisco@denmark.lit/barracks' id='items1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='princely_musings'>
      <item id='368866411b877c30064a5f62b917cffe'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title>The Uses of This World</title>
        </entry>
      </item>
      <item id='3300659945416e274474e469a1f0154c'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title>Ghostly Encounters</title>
        </entry>
      </item>
    </items>
  </pubsub>
</iq>
"""

RETRACT = """
<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='retract1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <retract node='princely_musings'>
      <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
    </retract>
  </pubsub>
</iq>
"""

AFFILIATIONS_REQUEST = """
<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='princely_musings'/>
  </pubsub>
</iq>
"""

AFFILIATIONS_RESULT = """
<iq type='result' from='pubsub.shakespeare.lit' to='hamlet@denmark.lit/elsinore' id='ent1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='princely_musings'>
      <affiliation jid='hamlet@denmark.lit' affiliation='owner'/>
      <affiliation jid='polonius@denmark.lit' affiliation='outcast'/>
    </affiliations>
  </pubsub>
</iq>
"""

MODIFY_AFFILIATION = """
<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='princely_musings'>
      <affiliation jid='bard@shakespeare.lit' affiliation='publisher'/>
    </affiliations>
  </pubsub>
</iq>
"""

# "Owner modifies subscriptions" (§8.8.2), with the 'none' that ends one (§8.8.2: "none").
MODIFY_SUBSCRIPTIONS = """
<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='subman2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <subscriptions node='princely_musings'>
      <subscription jid='bard@shakespeare.lit' subscription='none'/>
    </subscriptions>
  </pubsub>
</iq>
"""

# §7.1.3.6-style refusal of a publish-options precondition (conflict + precondition-not-met).
PRECONDITION_NOT_MET = """
<iq type='error' from='pubsub.shakespeare.lit' to='hamlet@denmark.lit/elsinore' id='pub1'>
  <error type='cancel'>
    <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/>
  </error>
</iq>
"""


def _fields(example: Element) -> dict[str, str]:
    return {
        field.get("var", ""): (field.findtext(f"{{{wire.NS_DATA}}}value") or "").strip()
        for field in example.iter(f"{{{wire.NS_DATA}}}field")
        if field.get("var") != "FORM_TYPE"
    }


def test_publish_with_options() -> None:
    expected = payload(PUBLISH_WITH_OPTIONS)
    entry = next(expected.iter("{http://www.w3.org/2005/Atom}entry"))
    built = wire.build_publish(
        "princely_musings",
        "ae890ac52d0df67ed7cfdf51b644e901",
        entry,
        {"pubsub#access_model": "presence"},
    )
    assert_same_xml(built, expected)


def test_create_configure_items_retract_affiliations() -> None:
    create = payload(CREATE_CONFIGURED)
    assert_same_xml(wire.build_create("princely_musings", _fields(create)), create)
    configure = payload(CONFIGURE)
    assert_same_xml(wire.build_configure("princely_musings", _fields(configure)), configure)
    assert_same_xml(wire.build_items_request("princely_musings"), payload(ITEMS_REQUEST))
    retract = wire.build_retract("princely_musings", "ae890ac52d0df67ed7cfdf51b644e901")
    assert_same_xml(retract, payload(RETRACT))
    request = wire.build_affiliations_request("princely_musings")
    assert_same_xml(request, payload(AFFILIATIONS_REQUEST))
    modify = wire.build_affiliations_set("princely_musings", {"bard@shakespeare.lit": "publisher"})
    assert_same_xml(modify, payload(MODIFY_AFFILIATION))
    ended = wire.build_subscriptions_set("princely_musings", ["bard@shakespeare.lit"])
    assert_same_xml(ended, payload(MODIFY_SUBSCRIPTIONS))


def test_parsing_the_services_answers() -> None:
    items = wire.parse_items(payload(ITEMS_RESULT))
    assert list(items) == ["368866411b877c30064a5f62b917cffe", "3300659945416e274474e469a1f0154c"]
    assert wire.parse_affiliations(payload(AFFILIATIONS_RESULT)) == {
        "hamlet@denmark.lit": "owner",
        "polonius@denmark.lit": "outcast",
    }
    error = parse(PRECONDITION_NOT_MET).find("error")
    assert wire.error_conditions(error) == ("conflict", "precondition-not-met")
    assert wire.error_conditions(None) == ("undefined-condition", None)
    # Bad input: items without ids, affiliations without jids, empty answers.
    odd = parse(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item/>"
        "<item id=''/><item id='x'/></items></pubsub>"
    )
    assert wire.parse_items(odd) == {"x": None}
    assert wire.parse_items(None) == {}
    assert wire.parse_affiliations(None) == {}


def test_iot_item_carries_what_a_readout_carries() -> None:
    stamp = datetime(2025, 3, 14, 7, 42, 5, tzinfo=UTC)
    momentary = frozenset({Category.MOMENTARY})
    temperature = FieldSpec(
        name="temperature", type=FieldType.NUMERIC, categories=momentary, unit="°C"
    )
    online = FieldSpec(
        name="online", type=FieldType.BOOLEAN, categories=frozenset({Category.STATUS})
    )
    auto = frozenset({Quality.AUTOMATIC_READOUT})
    pairs = [
        (temperature, FieldValue("temperature", Decimal("6.8"), stamp, auto)),
        (online, FieldValue("online", True, stamp.replace(minute=40), auto)),
    ]
    item = wire.build_device_fields("weather", pairs)
    readout = build_fields(1, [NodeReadings(NodeRef("weather"), pairs)], done=True)
    # The same typed field elements, under one <timestamp> (the newest value's time).
    item_fields = list(next(item.iter(f"{{{NS_SENSORDATA}}}timestamp")))
    readout_fields = [f for s in readout.iter(item[0][0].tag) for f in s]
    assert len(item_fields) == 2
    for built, read in zip(item_fields, readout_fields, strict=True):
        assert_same_xml(built, read)
    assert item[0][0].get("value") == "2025-03-14T07:42:05Z"
    assert item.get("seqnr") is None
    assert wire.field_names(item) == {"temperature", "online"}
    assert wire.field_names(None) == frozenset()
    assert wire.max_items_for(3) == 32
    assert wire.max_items_for(33) == 64
