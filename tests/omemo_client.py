"""A person's OMEMO client for the tests: slixmpp with slixmpp-omemo, its own keys in a file.

Independent of hubd's code: its own storage (a JSON file in the test's tmp
dir), blind trust for everyone (as Conversations does by default), and
helpers that send a line encrypted and decrypt the hub's answers.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from omemo.storage import Just, Maybe, Nothing, Storage
from omemo.types import DeviceInformation, JSONType
from slixmpp import JID
from slixmpp.plugins import register_plugin
from slixmpp.stanza import Message
from slixmpp_omemo import XEP_0384
from xmpp_client import TestClient, connect_client

from hubd.testing.prosody import ProsodyServer

NS_OLDMEMO = "eu.siacs.conversations.axolotl"


class JsonStorage(Storage):
    """Everything in one JSON file, rewritten at each change (fine for a test client)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.data: dict[str, JSONType] = json.loads(path.read_text()) if path.exists() else {}

    async def _load(self, key: str) -> Maybe[JSONType]:
        return Just(self.data[key]) if key in self.data else Nothing()

    async def _store(self, key: str, value: JSONType) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data))

    async def _delete(self, key: str) -> None:
        self.data.pop(key, None)
        self.path.write_text(json.dumps(self.data))


class ClientOmemo(XEP_0384):
    """slixmpp-omemo for a test person: blind trust, keys in ``store_path``."""

    default_config = {"fallback_message": "OMEMO (test client)", "store_path": None}  # noqa: RUF012

    def plugin_init(self) -> None:
        self._storage = JsonStorage(Path(self.store_path))
        super().plugin_init()

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def _prompt_manual_trust(
        self, manually_trusted: frozenset[DeviceInformation], identifier: str | None
    ) -> None:
        raise AssertionError(f"the test client was asked to trust {manually_trusted}")


register_plugin(ClientOmemo)


class OmemoClient(TestClient):
    """A TestClient that speaks OMEMO (legacy 0.3, as the phone clients do)."""

    __test__ = False
    store_path: Path

    def __init__(self, jid: str, password: str, *, ca_file: Path) -> None:
        super().__init__(jid, password, ca_file=ca_file)
        self.initialized = asyncio.Event()
        self.add_event_handler("omemo_initialized", lambda _e: self.initialized.set())
        self.register_plugin("xep_0380")
        self.register_plugin(
            "xep_0384", {"store_path": str(self.store_path)}, module=sys.modules[__name__]
        )

    @property
    def omemo(self) -> ClientOmemo:
        return self.plugin["xep_0384"]  # type: ignore[no-any-return]

    async def send_encrypted(self, to: str, text: str) -> Message:
        """Send ``text`` to ``to`` encrypted; return the stanza as sent."""
        message = self.make_message(mto=JID(to), mtype="chat")
        message["body"] = text
        encrypted, errors = await self.omemo.encrypt_message(message, JID(JID(to).bare))
        assert encrypted is not None, errors
        encrypted.send()
        return encrypted

    async def wait_encrypted(
        self,
        sender: str,
        timeout: float = 15,  # noqa: ASYNC109
        *,
        to_me: bool = False,
    ) -> tuple[str, Message]:
        """The next encrypted chat message from ``sender`` (bare), decrypted: (text, stanza).

        ``to_me``: only one sent to this full JID (an answer; the hub's own news go to the
        bare JID).
        """

        def encrypted_from(message: Any) -> bool:
            return (
                message["from"].bare == sender
                and (not to_me or message["to"] == self.boundjid)
                and message.xml.find(f"{{{NS_OLDMEMO}}}encrypted") is not None
                and message.xml.find(f"{{{NS_OLDMEMO}}}encrypted/{{{NS_OLDMEMO}}}payload")
                is not None
            )

        stanza = await self.wait_message(encrypted_from, timeout=timeout)
        decrypted, _device = await self.omemo.decrypt_message(stanza)
        return str(decrypted["body"]), stanza

    async def ask_encrypted(self, to: str, text: str) -> tuple[str, Message]:
        """Send ``text`` encrypted; return the decrypted answer and its stanza."""
        await self.send_encrypted(to, text)
        return await self.wait_encrypted(JID(to).bare, to_me=True)


async def connect_omemo_client(
    server: ProsodyServer, user: str, password: str, store: Path, *, resource: str = "omemo"
) -> OmemoClient:
    """Connect ``user`` with OMEMO; returns once its own keys are published."""

    def make(jid: str, password: str, *, ca_file: Path) -> OmemoClient:
        cls = type("BoundOmemoClient", (OmemoClient,), {"store_path": store})
        return cls(jid, password, ca_file=ca_file)

    client = await connect_client(server, user, password, resource=resource, make=make)
    assert isinstance(client, OmemoClient)
    async with asyncio.timeout(30):
        await client.initialized.wait()
    return client
