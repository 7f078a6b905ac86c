"""slixmpp's own xep_0323/xep_0325 client plugins against a real hubd (issue 14 §1).

Both plugins implement the 2014 v0.2 drafts (digest §8.1): their handlers see
a refusal only in an ``iq type='error'`` carrying ``<setResponse
responseCode>`` or ``<rejected>``, and otherwise leave the caller waiting for
ever.  Every case here must end in the plugin's callback; the futures are
bounded by timeouts, and set from the callback thread-safely (the xep_0323
plugin is written for threads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hubd_process import HubdProcess
from xmpp_client import TestClient

TIMEOUT = 10.0
#: What ends a readout for the xep_0323 client.
FINAL = frozenset({"done", "rejected", "failure", "cancelled"})


def _collector() -> tuple[asyncio.Queue[dict[str, Any]], Callable[..., None]]:
    """A queue of the callback's keyword arguments, fed from any thread."""
    loop = asyncio.get_running_loop()
    calls: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def callback(**kwargs: Any) -> None:
        loop.call_soon_threadsafe(calls.put_nowait, kwargs)

    return calls, callback


async def stock_set(
    client: TestClient, to: str, fields: list[tuple[str, str, str]], nodes: list[str]
) -> dict[str, Any]:
    """A set through slixmpp's xep_0325 ``set_request``; its callback's arguments."""
    calls, callback = _collector()
    client.plugin["xep_0325"].set_request(client.boundjid, to, callback, fields, nodeIds=nodes)
    async with asyncio.timeout(TIMEOUT):
        return await calls.get()


async def stock_read(client: TestClient, to: str, nodes: list[str]) -> list[dict[str, Any]]:
    """A momentary readout through slixmpp's xep_0323 ``request_data``, to its last callback."""
    calls, callback = _collector()
    client.plugin["xep_0323"].request_data(
        client.boundjid, to, callback, nodeIds=nodes, flags={"momentary": "true"}
    )
    results: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        while not results or results[-1]["result"] not in FINAL:
            results.append(await calls.get())
    return results


def _with_stock_plugins(*clients: TestClient) -> None:
    for client in clients:
        client.register_plugin("xep_0323")
        client.register_plugin("xep_0325")


async def test_stock_readout_ends_with_done(hubd: HubdProcess, alice: TestClient) -> None:
    _with_stock_plugins(alice)
    results = await stock_read(alice, hubd.jid, ["porch-light"])
    assert [r["result"] for r in results] == ["accepted", "fields", "done"]
    [field] = [f for f in results[1]["fields"] if f["name"] == "state"]
    assert field["typename"] == "boolean"
    assert field["value"] == "false"
    assert results[1]["nodeId"] == "porch-light"


async def test_stock_set_reports_ok(hubd: HubdProcess, carol: TestClient) -> None:
    _with_stock_plugins(carol)
    answer = await stock_set(carol, hubd.jid, [("state", "boolean", "true")], ["porch-light"])
    assert answer["result"] == "OK"
    results = await stock_read(carol, hubd.jid, ["porch-light"])
    [field] = [f for f in results[1]["fields"] if f["name"] == "state"]
    assert field["value"] == "true"


async def test_stock_set_refusals_call_back(
    hubd: HubdProcess, carol: TestClient, bob: TestClient
) -> None:
    _with_stock_plugins(carol, bob)
    # The plugin reports only the responseCode: its ``nodes``/``datas`` are not
    # interfaces of its setResponse stanza, and it looks for ``<error/>`` outside
    # the namespace, so nodeIds and fields come back empty and error_msg None
    # whatever the device sends (the golden tests hold what hubd sends).
    unknown_node = await stock_set(carol, hubd.jid, [("state", "boolean", "true")], ["attic"])
    assert unknown_node["result"] == "NotFound"

    unknown_parameter = await stock_set(
        carol, hubd.jid, [("brightness", "int", "5")], ["porch-light"]
    )
    assert unknown_parameter["result"] == "NotFound"

    bad_value = await stock_set(carol, hubd.jid, [("state", "int", "5")], ["porch-light"])
    assert bad_value["result"] == "OtherError"

    read_only = await stock_set(carol, hubd.jid, [("state", "boolean", "true")], ["front-door"])
    assert read_only["result"] == "NotImplemented"

    reader = await stock_set(bob, hubd.jid, [("state", "boolean", "true")], ["porch-light"])
    assert reader["result"] == "InsufficientPrivileges"
    assert reader["from_jid"] == hubd.jid

    # Nothing was written by any of them.
    results = await stock_read(carol, hubd.jid, ["porch-light"])
    [field] = [f for f in results[1]["fields"] if f["name"] == "state"]
    assert field["value"] == "false"


async def test_stock_read_refusals_call_back(
    hubd: HubdProcess, alice: TestClient, mallory: TestClient
) -> None:
    _with_stock_plugins(alice, mallory)
    [unknown] = await stock_read(alice, hubd.jid, ["attic"])
    assert unknown["result"] == "rejected"
    assert "attic" in unknown["error_msg"]

    [stranger] = await stock_read(mallory, hubd.jid, ["porch-light"])
    assert stranger["result"] == "rejected"
    assert stranger["error_msg"] == "Access denied."


async def test_stock_cancel_of_an_unknown_readout_calls_back(
    hubd: HubdProcess, alice: TestClient
) -> None:
    _with_stock_plugins(alice)
    calls, callback = _collector()
    plugin = alice.plugin["xep_0323"]
    # A session the client still holds but hubd never had (or has finished).
    plugin.sessions["77"] = {"from": alice.boundjid, "to": hubd.jid, "callback": callback}
    plugin.cancel_request("77")
    async with asyncio.timeout(TIMEOUT):
        answer = await calls.get()
    assert answer["result"] == "rejected"
    assert "77" in answer["error_msg"]
