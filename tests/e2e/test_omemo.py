"""OMEMO end to end: a real hubd, a real Prosody (with PEP), slixmpp-omemo clients.

The people's clients are independent of hubd's code (tests/omemo_client.py:
their own key store, blind trust as Conversations does).  Every check reads
what went over the wire: the answer decrypts to the expected text, and the
plaintext ``<body>`` of every encrypted message is the fallback notice only.
Absence of an answer is proved with an XMPP ping as an ordering barrier.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, fromstring, tostring

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from omemo.session_manager import MessageNotForUs
from omemo_client import NS_OLDMEMO, OmemoClient, connect_omemo_client
from slixmpp import JID
from slixmpp.stanza import Message
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer
from hubd.xmpp.omemo_store import fingerprint

HUB = "hub@localhost"
FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
# slixmpp-omemo 2.2 reaches plugins the way slixmpp 1.17 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing plugins through the XMPP object:DeprecationWarning"
)
OMEMO_READY = r"OMEMO ready in [0-9.]+ s: device (\d+), fingerprint ([0-9a-f ]+)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodyServer]:
    """A Prosody of this module's own: the OMEMO device lists of other tests stay out."""
    made = ProsodyServer(tmp_path_factory.mktemp("prosody-omemo"))
    for user, password in ACCOUNTS.items():
        made.register(user, password)
    with made:
        yield made


def hub_process(tmp_path: Path, server: ProsodyServer, omemo: str = "") -> HubdProcess:
    extra = "events:\n  history_interval: 0\n" + omemo
    return HubdProcess(tmp_path / "hubd", server, extra_config=extra)


@pytest.fixture
async def hub(server: ProsodyServer, tmp_path: Path) -> AsyncIterator[HubdProcess]:
    """hubd with OMEMO on by default (the extra is installed), ready to decrypt."""
    async with hub_process(tmp_path, server).running(OMEMO_READY) as process:
        yield process


async def person(
    server: ProsodyServer, user: str, tmp_path: Path, resource: str = "omemo"
) -> OmemoClient:
    return await connect_omemo_client(
        server, user, ACCOUNTS[user], tmp_path / f"{user}-{resource}.json", resource=resource
    )


@pytest.fixture
async def alice(server: ProsodyServer, tmp_path: Path) -> AsyncIterator[OmemoClient]:
    """Alice (the owner) with OMEMO."""
    client = await person(server, "alice", tmp_path)
    yield client
    await client.disconnect_and_wait()


def assert_sealed(stanza: object) -> None:
    """An encrypted message from the hub: only the fallback notice in the clear."""
    xml = stanza.xml  # type: ignore[attr-defined]
    assert xml.find(f"{{{NS_OLDMEMO}}}encrypted") is not None
    bodies = [b.text for b in xml.findall("{jabber:client}body")]
    assert bodies == [FALLBACK]
    # Nothing else carries text: no OOB link, no fields, no subject.
    assert xml.find("{jabber:x:oob}x") is None
    assert xml.find("{jabber:client}subject") is None


async def answer(client: TestClient) -> Message:
    """The hub's next message with a body to this full JID (its news go to the bare JID)."""
    return await client.wait_message(
        lambda m: m["from"].bare == HUB and m["to"] == client.boundjid and bool(m["body"])
    )


async def no_reply_pending(client: TestClient, hub: HubdProcess) -> None:
    """The hub has sent this client no message with a body (a ping is the barrier)."""
    await client.plugin["xep_0199"].ping(jid=JID(hub.jid), timeout=10)
    while not client.messages.empty():
        message = client.messages.get_nowait()
        assert not (message["from"].bare == HUB and message["body"]), str(message)


async def test_encrypted_read_and_set(hub: HubdProcess, alice: OmemoClient) -> None:
    text, stanza = await alice.ask_encrypted(HUB, "read porch-light")
    assert text == "Porch light: state off (just now)"
    assert_sealed(stanza)
    text, stanza = await alice.ask_encrypted(HUB, "set porch-light state on")
    assert text == "Porch light: state on"
    assert_sealed(stanza)
    # The same audit line as a plaintext command.
    await hub.wait_for_log(r"control by alice@localhost/omemo: porch-light\.state = True done")
    text, _ = await alice.ask_encrypted(HUB, "read porch-light")
    assert text == "Porch light: state on (just now)"


async def test_watch_events_go_encrypted(
    hub: HubdProcess, alice: OmemoClient, server: ProsodyServer
) -> None:
    text, _ = await alice.ask_encrypted(HUB, "watch porch-light")
    assert text == "Watching Porch light (any change). Type unwatch porch-light to stop."
    carol = await connect_client(server, "carol", ACCOUNTS["carol"])
    try:
        carol.send_message(mto=HUB, mbody="set porch-light state on", mtype="chat")
        # carol wrote in the clear: her answer comes in the clear (her choice) ...
        assert (await answer(carol))["body"] == "Porch light: state on"
    finally:
        await carol.disconnect_and_wait()
    # ... and alice's event encrypted, because her last command was.
    text, stanza = await alice.wait_encrypted(HUB, to_me=True)
    assert text == "Porch light: state on"
    assert_sealed(stanza)


async def test_fingerprint_devices_and_distrust(
    hub: HubdProcess, alice: OmemoClient, server: ProsodyServer, tmp_path: Path
) -> None:
    own = await hub.wait_for_log(OMEMO_READY)
    match = re.search(OMEMO_READY, own)
    assert match is not None
    text, _ = await alice.ask_encrypted(HUB, "fingerprint")
    assert text == f"The hub's OMEMO fingerprint (device {match[1]}):\n{match[2].strip()}"
    session = await alice.omemo.get_session_manager()
    me, _ = await session.get_own_device_information()
    mine = fingerprint(me.identity_key)
    text, _ = await alice.ask_encrypted(HUB, "devices")
    assert f"alice@localhost {me.device_id}: {mine} (trusted, not verified)" in text
    # The owners heard of the new device (in a message of its own, encrypted to her).
    news = ""
    while f"New OMEMO device of alice@localhost trusted (not verified): {mine}" not in news:
        # Earlier tests' news, stored offline for her bare JID, may come first, and
        # encrypted for her earlier devices.
        with contextlib.suppress(MessageNotForUs):
            news, _ = await alice.wait_encrypted(HUB)
    assert news.endswith("Not theirs? Type: distrust <jid> <fingerprint>")
    # From a second device of hers, pasted as Conversations shows it (no spaces).
    phone = await person(server, "alice", tmp_path, resource="phone")
    try:
        text, _ = await phone.ask_encrypted(
            HUB, f"distrust alice@localhost {mine.replace(' ', '')}"
        )
    finally:
        await phone.disconnect_and_wait()
    assert text == f"Device {me.device_id} of alice@localhost distrusted: the hub ignores it now."
    await alice.send_encrypted(HUB, "set porch-light state on")
    refusal = await answer(alice)
    assert refusal["body"] == "The hub's owners distrusted this device of yours: nothing was done."
    assert "porch-light.state = True" not in hub.log()


async def test_require_refuses_plaintext(
    server: ProsodyServer, tmp_path: Path, alice: OmemoClient
) -> None:
    process = hub_process(tmp_path, server, "omemo:\n  require: true\n")
    async with process.running(OMEMO_READY):
        match = re.search(OMEMO_READY, process.log())
        assert match is not None
        alice.send_message(mto=HUB, mbody="set porch-light state on", mtype="chat")
        refusal = await answer(alice)
        assert refusal["body"] == (
            "This hub takes commands end-to-end encrypted only: turn on OMEMO for this chat. "
            f"The hub's fingerprint: {match[2].strip()}"
        )
        assert refusal.xml.find(f"{{{NS_OLDMEMO}}}encrypted") is None
        # Not carried out; encrypted, the same command is.
        text, _ = await alice.ask_encrypted(HUB, "read porch-light")
        assert text == "Porch light: state off (just now)"
        assert "porch-light.state" not in process.log()


async def test_keys_survive_restart_and_kill(
    server: ProsodyServer, tmp_path: Path, alice: OmemoClient
) -> None:
    process = hub_process(tmp_path, server)
    async with process.running(OMEMO_READY):
        first = re.search(OMEMO_READY, process.log())
        assert first is not None
        text, _ = await alice.ask_encrypted(HUB, "read porch-light")
        assert text == "Porch light: state off (just now)"
        assert process.proc is not None
        process.proc.kill()  # kill -9: no goodbye, nothing flushed by hubd
        await process.wait_exit()
    store = tmp_path / "hubd" / "state" / "omemo.sqlite"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    process.mark()
    async with process.running(OMEMO_READY):
        again = re.search(OMEMO_READY, process.log()[process._offset :])
        assert again is not None
        assert (again[1], again[2]) == (first[1], first[2])
        # The session goes on where it was: no new key exchange needed.
        text, _ = await alice.ask_encrypted(HUB, "set porch-light state on")
        assert text == "Porch light: state on"
    # The command line tells the same fingerprint (the hub stopped or running alike).
    cli = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "hubd", "omemo", "fingerprint", "-c", str(process.config_file)),
        stdout=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        printed, _ = await cli.communicate()
    assert cli.returncode == 0
    assert printed.decode() == f"hub@localhost: {first[2].strip()}\n"


async def test_a_strangers_encrypted_message_gets_only_the_refusal(
    hub: HubdProcess, server: ProsodyServer, tmp_path: Path
) -> None:
    mallory = await person(server, "mallory", tmp_path)
    try:
        await mallory.send_encrypted(HUB, "read porch-light")
        refusal = await answer(mallory)
        assert refusal["body"] == "Not authorised."
        assert refusal.xml.find(f"{{{NS_OLDMEMO}}}encrypted") is None
        await no_reply_pending(mallory, hub)
    finally:
        await mallory.disconnect_and_wait()
    # Nothing was decrypted, trusted or fetched for her.
    log = hub.log()
    assert "device of mallory" not in log
    assert "cannot decrypt" not in log


def _broken(to: str, payload: str) -> Element:
    message = Element("{jabber:client}message", {"to": to, "type": "chat", "id": "bad1"})
    encrypted = Element(f"{{{NS_OLDMEMO}}}encrypted")
    encrypted.append(fromstring(payload))
    message.append(encrypted)
    body = Element("{jabber:client}body")
    body.text = "fallback"
    message.append(body)
    return message


@pytest.mark.parametrize(
    "payload",
    [
        # a header with no key for the hub's device
        f"<header xmlns='{NS_OLDMEMO}' sid='12345'><iv>AAAAAAAAAAAAAAAA</iv></header>",
        # a key that is not a Signal message at all
        f"<header xmlns='{NS_OLDMEMO}' sid='12345'><key rid='1'>bm90IGEga2V5</key>"
        "<iv>AAAAAAAAAAAAAAAA</iv></header>",
        # no header
        f"<payload xmlns='{NS_OLDMEMO}'>AAAA</payload>",
    ],
)
async def test_malformed_omemo_is_answered_and_logged_once(
    hub: HubdProcess, alice: OmemoClient, payload: str
) -> None:
    for _ in range(2):
        alice.send_raw(tostring(_broken(HUB, payload), encoding="unicode"))
        notice = await answer(alice)
        assert notice["body"] == (
            "Could not decrypt that message (OMEMO). Send it again; type fingerprint to check."
        )
    assert hub.log().count("OMEMO: cannot decrypt a message from alice@localhost") == 1
    # The hub goes on: an encrypted command works.
    text, _ = await alice.ask_encrypted(HUB, "read porch-light")
    assert text == "Porch light: state off (just now)"


def _store_keys_naming(hub: HubdProcess, who: str) -> list[str]:
    """The hub's key store rows whose key names ``who`` (sessions, device lists, trust)."""
    store = hub.config_file.parent / "state" / "omemo.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT key FROM kv WHERE key LIKE ?", (f"%{who}%",)).fetchall()
    return [key for (key,) in rows]


async def test_a_strangers_key_exchange_is_refused_and_nothing_kept(
    hub: HubdProcess, server: ProsodyServer, tmp_path: Path
) -> None:
    mallory = await person(server, "mallory", tmp_path, resource="keyx")
    try:
        sealed = await mallory.send_encrypted(HUB, "read porch-light")
        assert (await answer(mallory))["body"] == "Not authorised."
        # The same key exchange again, as a bare key transport (no payload: nothing typed),
        # and once more: the refusal is rate-limited, nothing else comes back.
        transport = fromstring(str(sealed))
        encrypted = transport.find(f"{{{NS_OLDMEMO}}}encrypted")
        assert encrypted is not None
        payload = encrypted.find(f"{{{NS_OLDMEMO}}}payload")
        assert payload is not None
        encrypted.remove(payload)
        for body in transport.findall("{jabber:client}body"):
            transport.remove(body)
        for _ in range(2):
            mallory.send_raw(tostring(transport, encoding="unicode"))
        await no_reply_pending(mallory, hub)
    finally:
        await mallory.disconnect_and_wait()
    log = hub.log()
    assert log.count("refused a chat command from mallory@localhost") == 1
    assert "cannot decrypt" not in log
    # No session, device list or trust of hers in the hub's store: nothing was fetched.
    assert _store_keys_naming(hub, "mallory") == []


async def test_a_replayed_message_is_not_run_again(
    hub: HubdProcess, server: ProsodyServer, tmp_path: Path
) -> None:
    alice = await person(server, "alice", tmp_path, resource="replay")
    try:
        first = await alice.send_encrypted(HUB, "set porch-light state on")  # a key exchange
        text, _ = await alice.wait_encrypted(HUB, to_me=True)
        assert text == "Porch light: state on"
        second = await alice.send_encrypted(HUB, "set porch-light state off")
        text, _ = await alice.wait_encrypted(HUB, to_me=True)
        assert text == "Porch light: state off"
        # A server (or anyone on the path) plays both stanzas again, as they were.
        for replayed in (first, second, first):
            alice.send_raw(str(replayed))
            notice = await answer(alice)
            assert notice["body"] == (
                "Could not decrypt that message (OMEMO). Send it again; type fingerprint to check."
            )
            assert notice.xml.find(f"{{{NS_OLDMEMO}}}encrypted") is None
        # Neither was carried out again; the session goes on.
        text, _ = await alice.ask_encrypted(HUB, "read porch-light")
        assert text == "Porch light: state off (just now)"
    finally:
        await alice.disconnect_and_wait()
    log = hub.log()
    assert log.count("porch-light.state = True done") == 1
    assert log.count("porch-light.state = False done") == 1
    assert log.count("OMEMO: cannot decrypt a message from alice@localhost") == 1
