# ruff: noqa: E501  (the XEP examples, verbatim: their long lines included)
"""XEP-0323's own examples (§1.10, in the digest's copy), verbatim: the golden XML that the
readout tests of the hub's side, hubctl's side and the forwarding across hubs all compare with."""

REQ_1 = """<iq type='get'
  from='client@example.org/amr'
  to='device@example.org'
  id='S0001'>
  <req xmlns='urn:xmpp:iot:sensordata' seqnr='1' momentary='true'/>
</iq>"""

ACCEPTED_1 = """<iq type='result'
  from='device@example.org'
  to='client@example.org/amr'
  id='S0001'>
  <accepted xmlns='urn:xmpp:iot:sensordata' seqnr='1'/>
</iq>"""

FIELDS_1 = """<message from='device@example.org'
  to='client@example.org/amr'>
  <fields xmlns='urn:xmpp:iot:sensordata' seqnr='1' done='true'>
    <node nodeId='Device01'>
      <timestamp value='2013-03-07T16:24:30'>
        <numeric name='Temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>
      </timestamp>
    </node>
  </fields>
</message>"""

FAILURE_2 = """<message from='device@example.org'
  to='client@example.org/amr'>
  <failure xmlns='urn:xmpp:iot:sensordata' seqnr='2' done='true'>
    <error nodeId='Device01' timestamp='2013-03-07T17:13:30'>Timeout.</error>
  </failure>
</message>"""

REJECTION_3 = """<iq type='error'
  from='device@example.org'
  to='client@example.org/amr'
  id='S0003'>
  <error type='cancel'>
    <forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
    <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Access denied.</text>
  </error>
</iq>"""

REQ_4 = """<iq type='get'
  from='client@example.org/amr'
  to='device@example.org'
  id='S0004'>
  <req xmlns='urn:xmpp:iot:sensordata' seqnr='4' all='true' when='2013-03-07T19:00:00'/>
</iq>"""

ACCEPTED_4 = """<iq type='result'
  from='device@example.org'
  to='client@example.org/amr'
  id='S0004'>
  <accepted xmlns='urn:xmpp:iot:sensordata' seqnr='4' queued='true'/>
</iq>"""

STARTED_4 = """<message from='device@example.org'
  to='client@example.org/amr'>
  <started xmlns='urn:xmpp:iot:sensordata' seqnr='4'/>
</message>"""

FIELDS_4 = """<message from='device@example.org'
  to='client@example.org/amr'>
  <fields xmlns='urn:xmpp:iot:sensordata' seqnr='4'>
    <node nodeId='Device01'>
      <timestamp value='2013-03-07T19:00:00'>
        <numeric name='Temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>
        <numeric name='Runtime' status='true' automaticReadout='true' value='12345' unit='h'/>
        <string name='Device ID' identification='true' automaticReadout='true' value='Device01'/>
      </timestamp>
    </node>
  </fields>
</message>"""

DONE_4 = """<message from='device@example.org'
  to='client@example.org/amr'>
  <done xmlns='urn:xmpp:iot:sensordata' seqnr='4'/>
</message>"""

REQ_6 = """<iq type='get'
  from='client@example.org/amr'
  to='device@example.org'
  id='S0006'>
  <req xmlns='urn:xmpp:iot:sensordata' seqnr='6' momentary='true'>
    <node nodeId='Device04'/>
    <field name='Energy'/>
    <field name='Power'/>
  </req>
</iq>"""
