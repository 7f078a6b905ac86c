# The verbatim XEP examples below are longer than the line limit; they stay verbatim.
# ruff: noqa: E501
"""XEP-0323 across two hubs (hubd.xmpp.remote_sensordata): the XEP's examples as the remote's answers.

The remote's messages are the digest §1.10 examples verbatim; what this hub
passes on is the same ``<node>``/``<error>`` under the remote's ``sourceId``.
"""

from __future__ import annotations

from xep0323_examples import DONE_4, FAILURE_2, FIELDS_1, REQ_4, REQ_6
from xmlcompare import assert_same_xml, parse, payload

from hubd.xmpp.remote_sensordata import (
    RemoteAnswer,
    build_message,
    forward_req,
    missing,
    node_errors,
    take,
)
from hubd.xmpp.sensordata_xml import NS_SENSORDATA


def test_the_request_sent_on_keeps_categories_and_fields_under_this_hubs_seqnr() -> None:
    forwarded = forward_req(payload(REQ_6), 900, ["Device04"])
    assert_same_xml(
        forwarded,
        parse(
            f"<req xmlns='{NS_SENSORDATA}' seqnr='900' momentary='true'>"
            "<node nodeId='Device04'/><field name='Energy'/><field name='Power'/></req>"
        ),
    )


def test_a_scheduled_request_is_scheduled_here_not_at_the_remote() -> None:
    forwarded = forward_req(payload(REQ_4), 7, ["door", "light"])
    assert forwarded.get("when") is None
    assert forwarded.get("all") == "true"
    assert [n.get("nodeId") for n in forwarded] == ["door", "light"]


def test_values_and_failures_come_back_under_the_remotes_source_id() -> None:
    answer = RemoteAnswer()
    take(answer, payload(FIELDS_1), "garage")
    assert answer.done
    take(answer, payload(FAILURE_2), "garage")
    message = build_message(42, "fields", answer.nodes, done=True)
    assert_same_xml(
        message,
        parse(
            f"<fields xmlns='{NS_SENSORDATA}' seqnr='42' done='true'>"
            "<node nodeId='Device01' sourceId='garage'>"
            "<timestamp value='2013-03-07T16:24:30'>"
            "<numeric name='Temperature' momentary='true' automaticReadout='true' value='23.4' unit='°C'/>"
            "</timestamp></node></fields>"
        ),
    )
    failure = build_message(42, "failure", answer.errors, done=False)
    assert_same_xml(
        failure,
        parse(
            f"<failure xmlns='{NS_SENSORDATA}' seqnr='42'>"
            "<error nodeId='Device01' sourceId='garage' timestamp='2013-03-07T17:13:30'>Timeout.</error>"
            "</failure>"
        ),
    )


def test_a_standalone_done_ends_the_remotes_answer() -> None:
    answer = RemoteAnswer()
    take(answer, payload(DONE_4), "garage")
    assert answer.done
    assert (answer.nodes, answer.errors) == ([], [])


def test_the_remotes_cache_type_is_dropped() -> None:
    answer = RemoteAnswer()
    take(
        answer,
        parse(
            f"<fields xmlns='{NS_SENSORDATA}' seqnr='1'>"
            "<node nodeId='door' sourceId='gpio' cacheType='x'/></fields>"
        ),
        "garage",
    )
    assert not answer.done
    assert answer.nodes[0].attrib == {"nodeId": "door", "sourceId": "garage"}


def test_nodes_the_remote_said_nothing_about_get_an_error_each() -> None:
    answer = RemoteAnswer()
    take(answer, payload(FAILURE_2), "garage")
    silent = missing(answer, ["Device01", "Device02", "Device03"])
    assert silent == ["Device02", "Device03"]
    errors = node_errors("garage", silent, "garage: no answer within 2 s")
    assert [(e.get("nodeId"), e.get("sourceId"), e.text) for e in errors] == [
        ("Device02", "garage", "garage: no answer within 2 s"),
        ("Device03", "garage", "garage: no answer within 2 s"),
    ]
    assert all(e.get("timestamp") for e in errors)
