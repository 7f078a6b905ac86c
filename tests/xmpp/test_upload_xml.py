# ruff: noqa: E501  (the XEPs' examples, verbatim: their long lines included)
"""XEP-0363 (HTTP File Upload) and XEP-0066 (OOB) on the wire, against the XEPs' own examples."""

from __future__ import annotations

from xml.etree.ElementTree import fromstring, tostring

from slixmpp import Iq
from slixmpp.exceptions import IqError

from hubd.xmpp.oob import oob_element
from hubd.xmpp.upload import max_file_size, parse_slot, refusal

# XEP-0363 Example 2: the service's disco#info, with its size limit.
DISCO_INFO = """
<query xmlns='http://jabber.org/protocol/disco#info'>
  <identity category='store' type='file' name='HTTP File Upload' />
  <feature var='urn:xmpp:http:upload:0' />
  <x type='result' xmlns='jabber:x:data'>
    <field var='FORM_TYPE' type='hidden'>
      <value>urn:xmpp:http:upload:0</value>
    </field>
    <field var='max-file-size'>
      <value>5242880</value>
    </field>
  </x>
</query>
"""

# XEP-0363 Example 5: a slot.
SLOT = """
<slot xmlns='urn:xmpp:http:upload:0'>
  <put url='https://upload.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg'>
    <header name='Authorization'>Basic Base64String==</header>
    <header name='Cookie'>foo=bar; user=romeo</header>
  </put>
  <get url='https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg' />
</slot>
"""

# XEP-0363 Examples 6 and 7: refusals.
TOO_LARGE = """
<iq xmlns='jabber:client' from='upload.montague.tld' id='step_03'
    to='romeo@montague.tld/garden' type='error'>
  <request xmlns='urn:xmpp:http:upload:0' filename='très cool.jpg' size='23456'
           content-type='image/jpeg' />
  <error type='modify'>
    <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' />
    <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>File too large. The maximum file size is 20000 bytes</text>
    <file-too-large xmlns='urn:xmpp:http:upload:0'>
      <max-file-size>20000</max-file-size>
    </file-too-large>
  </error>
</iq>
"""
QUOTA = """
<iq xmlns='jabber:client' from='upload.montague.tld' id='step_03'
    to='romeo@montague.tld/garden' type='error'>
  <request xmlns='urn:xmpp:http:upload:0' filename='très cool.jpg' size='23456'
           content-type='image/jpeg' />
  <error type='wait'>
    <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' />
    <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Quota reached. You can only upload 5 files in 5 minutes</text>
    <retry xmlns='urn:xmpp:http:upload:0' stamp='2017-12-03T23:42:01Z' />
  </error>
</iq>
"""
NOT_ALLOWED = """
<iq xmlns='jabber:client' from='upload.montague.tld' id='step_03'
    to='romeo@montague.tld/garden' type='error'>
  <error type='cancel'>
    <not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' />
    <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Only premium members are allowed to upload files</text>
  </error>
</iq>
"""


def test_the_size_limit_is_read_from_the_services_form() -> None:
    assert max_file_size(fromstring(DISCO_INFO)) == 5242880
    bare = "<query xmlns='http://jabber.org/protocol/disco#info'/>"
    assert max_file_size(fromstring(bare)) is None


def test_a_slot_gives_the_urls_and_only_the_allowed_headers() -> None:
    slot = parse_slot(fromstring(SLOT))
    assert slot.put.startswith("https://upload.montague.tld/4a771ac1")
    assert slot.get.startswith("https://download.montague.tld/4a771ac1")
    assert slot.headers == {
        "Authorization": "Basic Base64String==",
        "Cookie": "foo=bar; user=romeo",
    }
    hostile = SLOT.replace("name='Cookie'", "name='Host'")
    assert "Host" not in parse_slot(fromstring(hostile)).headers


def test_refusals_are_worded_for_people() -> None:
    def words(xml: str) -> str:
        return str(refusal(IqError(Iq(xml=fromstring(xml)))))

    assert words(TOO_LARGE) == "the file is too large (the server takes at most 20000 bytes)"
    assert words(QUOTA) == "the hub's upload quota is used up for now"
    assert words(NOT_ALLOWED) == "the server does not let the hub's account upload files"


def test_oob_is_the_xep_0066_element() -> None:
    # XEP-0066 Example 1, the x element of the message.
    url = "http://www.jabber.org/images/psa-license.jpg"
    golden = fromstring(f"<x xmlns='jabber:x:oob'><url>{url}</url></x>")
    assert tostring(oob_element(url)) == tostring(golden)
