# The verbatim examples below are longer than the line limit; they stay verbatim.
# ruff: noqa: E501
"""The wire side of remote events (hubd.xmpp.remote_events): the draft's examples.

This hub's unsubscribe is the IoT events ProtoXEP's example verbatim; its
subscribe parses back with hubd's own parser; a remote's event (an XEP-0323
``<fields>`` message, the digest's example) becomes specs and values here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from xmlcompare import assert_same_xml, parse, payload

from hubd.core.model import Category, FieldType
from hubd.xmpp.events import parse_subscribe
from hubd.xmpp.remote_events import (
    FIRST_SEQNR,
    build_subscribe,
    build_unsubscribe,
    field_pairs,
    readings_in_order,
)
from hubd.xmpp.sensordata_xml import NodeRef, parse_fields

UNSUBSCRIBE = """<iq type='get'
       from='client@clayster.com/amr'
       to='device@clayster.com'
       id='S0003'>
      <unsubscribe xmlns='urn:xmpp:iot:events' seqnr='1'/>
   </iq>"""

EVENT = """<message from='device@clayster.com' to='client@clayster.com/amr'>
      <fields xmlns='urn:xmpp:iot:sensordata' seqnr='1073741824' done='true'>
          <node nodeId='Device01'>
              <timestamp value='2013-03-07T16:24:30'>
                  <numeric name='Temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>
                  <numeric name='temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>
                  <boolean name='open' status='true' value='true'/>
              </timestamp>
          </node>
      </fields>
   </message>"""


def test_unsubscribe_is_the_drafts_example() -> None:
    assert_same_xml(build_unsubscribe(1), payload(UNSUBSCRIBE))


def test_subscribe_asks_for_every_change_of_one_node_and_no_current_value() -> None:
    element = build_subscribe(FIRST_SEQNR, "door")
    seqnr, refs, options = parse_subscribe(element)
    assert seqnr == FIRST_SEQNR
    assert refs == (NodeRef("door"),)
    assert options["rules"] == ()
    assert options["categories"] == frozenset()
    assert options["req"] is False
    assert options["min_interval"] is None
    assert options["max_interval"] is None


def test_a_remote_event_becomes_specs_and_values() -> None:
    fields = parse(EVENT).find("{urn:xmpp:iot:sensordata}fields")
    assert fields is not None
    [(ref, parsed)] = parse_fields(fields)
    assert ref.node_id == "Device01"
    pairs = field_pairs(parsed)
    # 'Temperature' is not lower_snake: it cannot be a field here, and is left out.
    assert [(s.name, s.type, s.unit) for s, _ in pairs] == [
        ("temperature", FieldType.NUMERIC, "°C"),
        ("open", FieldType.BOOLEAN, None),
    ]
    assert pairs[0][1].value == Decimal("23.4")
    assert pairs[1][0].categories == frozenset({Category.STATUS})
    assert pairs[0][1].timestamp.replace(tzinfo=UTC) == datetime(2013, 3, 7, 16, 24, 30, tzinfo=UTC)


BATCH = """<fields xmlns='urn:xmpp:iot:sensordata' seqnr='1073741824' done='true'>
  <node nodeId='weather' sourceId='serial'>
    <timestamp value='2026-12-03T13:04:28.270Z'><numeric name='temperature' momentary='true' value='21.0' unit='°C'/></timestamp>
    <timestamp value='2026-12-03T13:04:28.271Z'><numeric name='temperature' momentary='true' value='26.0' unit='°C'/></timestamp>
  </node>
</fields>"""


def test_a_remote_batch_is_taken_reading_by_reading() -> None:
    [(_, parsed)] = parse_fields(parse(BATCH))
    readings = readings_in_order(parsed)
    assert [[v.value for _, v in pairs] for pairs in readings] == [
        [Decimal("21.0")],
        [Decimal("26.0")],
    ]
