"""XEP-0347 payloads against the XEP's own examples (golden XML)."""

from __future__ import annotations

import pytest
from xmlcompare import assert_same_xml, payload, roundtrip

from hubd.core.claim import MetaTag
from hubd.errors import BadRequest
from hubd.xmpp.discovery_xml import (
    discovery_child,
    local,
    parse_claimed,
    register_element,
    unregister_element,
    update_element,
)

# The tags of XEP-0347's examples, in their order.
EXAMPLE_TAGS = (
    MetaTag("SN", "394872348732948723"),
    MetaTag("MAN", "www.ktc.se"),
    MetaTag("MODEL", "IMC"),
    MetaTag("V", 1.2),
    MetaTag("KEY", "4857402340298342"),
)

# Example 'Register Thing' (§3.6).
REGISTER = """
   <iq type='set'
       from='thing@example.org/imc'
       to='discovery.example.org'
       id='1'>
      <register xmlns='urn:xmpp:iot:discovery'>
          <str name='SN' value='394872348732948723'/>
          <str name='MAN' value='www.ktc.se'/>
          <str name='MODEL' value='IMC'/>
          <num name='V' value='1.2'/>
          <str name='KEY' value='4857402340298342'/>
      </register>
   </iq>"""

# Example 'Register self-owned Thing' (§3.7).
REGISTER_SELF_OWNED = """
   <iq type='set'
       from='thing@example.org/imc'
       to='discovery.example.org'
       id='2'>
      <register xmlns='urn:xmpp:iot:discovery' selfOwned='true'>
          <str name='SN' value='394872348732948723'/>
          <str name='MAN' value='www.ktc.se'/>
          <str name='MODEL' value='IMC'/>
          <num name='V' value='1.2'/>
          <str name='KEY' value='4857402340298342'/>
      </register>
   </iq>"""

# Example 'Update Meta Data request' (§3.12).
UPDATE = """
   <iq type='set'
       from='thing@example.org/imc'
       to='discovery.example.org'
       id='8'>
      <update xmlns='urn:xmpp:iot:discovery'>
          <str name='KEY' value=''/>
          <str name='CLASS' value='PLC'/>
          <num name='LON' value='-71.519722'/>
          <num name='LAT' value='-33.008055'/>
      </update>
   </iq>"""

# Example 'Unregister Thing' (§3.14).
UNREGISTER = """
   <iq type='set'
       from='thing@example.org/imc'
       to='discovery.example.org'
       id='10'>
      <unregister xmlns='urn:xmpp:iot:discovery'/>
   </iq>"""

# Examples 'Ownership claimed' and 'Ownership claim of private Thing successful' (§3.8).
CLAIMED = """
   <iq type='set'
       from='discovery.example.org'
       to='thing@example.org/imc'
       id='5'>
      <claimed xmlns='urn:xmpp:iot:discovery' jid='owner@example.org'/>
   </iq>"""
CLAIMED_PRIVATE = """
   <iq type='set'
       from='discovery.example.org'
       to='thing@example.org/imc'
       id='5'>
      <claimed xmlns='urn:xmpp:iot:discovery' jid='owner@example.org' public='false'/>
   </iq>"""

# Example 'Registration response when alrady claimed' (§3.6).
ALREADY_CLAIMED = """
   <iq type='result'
       from='discovery.example.org'
       to='thing@example.org/imc'
       id='1'>
      <claimed xmlns='urn:xmpp:iot:discovery' jid='owner@example.org'/>
   </iq>"""

# Examples 'Thing removed from registry by owner' (§3.9), 'Thing disowned in
# registry by owner' (§3.15), 'Update Meta Data response to request from disowned Thing'.
REMOVED = """
   <iq type='set' from='discovery.example.org' to='thing@example.org/imc' id='7'>
      <removed xmlns='urn:xmpp:iot:discovery'/>
   </iq>"""
DISOWNED = """
   <iq type='set' from='discovery.example.org' to='thing@example.org/imc' id='12'>
      <disowned xmlns='urn:xmpp:iot:discovery'/>
   </iq>"""
DISOWNED_ANSWER = """
   <iq type='result' from='discovery.example.org' to='thing@example.org/imc' id='8'>
      <disowned xmlns='urn:xmpp:iot:discovery'/>
   </iq>"""


def test_register_is_the_xeps_example() -> None:
    assert_same_xml(roundtrip(register_element(EXAMPLE_TAGS)), payload(REGISTER))


def test_register_self_owned_is_the_xeps_example() -> None:
    element = register_element(EXAMPLE_TAGS, self_owned=True)
    assert_same_xml(roundtrip(element), payload(REGISTER_SELF_OWNED))


def test_update_is_the_xeps_example() -> None:
    tags = (
        MetaTag("KEY", ""),
        MetaTag("CLASS", "PLC"),
        MetaTag("LON", -71.519722),
        MetaTag("LAT", -33.008055),
    )
    assert_same_xml(roundtrip(update_element(tags)), payload(UPDATE))


def test_unregister_is_the_xeps_example() -> None:
    assert_same_xml(roundtrip(unregister_element()), payload(UNREGISTER))


def test_whole_numbers_have_no_fraction() -> None:
    element = register_element((MetaTag("V", 2.0),))
    assert element[0].get("value") == "2"


@pytest.mark.parametrize(
    ("stanza", "public"), [(CLAIMED, True), (CLAIMED_PRIVATE, False), (ALREADY_CLAIMED, True)]
)
def test_claimed_examples_parse(stanza: str, public: bool) -> None:
    from xmlcompare import parse

    element = discovery_child(parse(stanza))
    assert element is not None
    assert local(element) == "claimed"
    claim = parse_claimed(element)
    assert claim.owner == "owner@example.org"
    assert claim.public is public


@pytest.mark.parametrize(
    ("stanza", "name"),
    [(REMOVED, "removed"), (DISOWNED, "disowned"), (DISOWNED_ANSWER, "disowned")],
)
def test_registry_requests_are_recognised(stanza: str, name: str) -> None:
    from xmlcompare import parse

    element = discovery_child(parse(stanza))
    assert element is not None
    assert local(element) == name


@pytest.mark.parametrize(
    "attrs",
    [
        "",  # no jid
        "jid=''",
        "jid='example.org'",  # a server is nobody's owner
        "jid='owner@example.org/phone'",  # a full JID
        "jid='own er@example.org'",
        "jid='owner@example.org' public='maybe'",
        "jid='owner@example.org' nodeId='porch-light'",  # hubd registers whole
    ],
)
def test_malformed_claims_are_refused(attrs: str) -> None:
    element = payload(f"<iq><claimed xmlns='urn:xmpp:iot:discovery' {attrs}/></iq>")
    with pytest.raises(BadRequest):
        parse_claimed(element)
