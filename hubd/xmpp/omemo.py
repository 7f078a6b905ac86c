"""End-to-end encrypted chat (XEP-0384 OMEMO) on slixmpp-omemo.

Only imported when OMEMO is on (``omemo:`` in the config, default on with
the ``omemo`` extra installed).  Wire version: the legacy
``eu.siacs.conversations.axolotl`` (OMEMO 0.3), which Conversations, Monal,
Gajim, Dino and Profanity speak today; slixmpp-omemo 2.2 cannot decrypt
``urn:xmpp:omemo:2`` yet (it needs XEP-0420), so that version is a switch
(:data:`OMEMO2`) for when the library can.

Trust: blind trust before verification, for the JIDs of the access lists
only.  A new device of a listed person is trusted and announced to the owners
by chat; an owner can distrust it (``distrust <jid> <fingerprint>``).  A
stranger's devices are never trusted and no key material is ever fetched for
a stranger: the chat layer refuses a stranger before anything is decrypted,
and device-list notifications from strangers are ignored.

The key store is :mod:`hubd.xmpp.omemo_store`.  The session manager is made
once per session start until that succeeds (it publishes the device list and
the bundle on the account's PEP); a server without PEP is one INFO line and
chat stays unencrypted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

import oldmemo
import twomemo
from omemo.session_manager import DeviceListDownloadFailed, SenderDistrusted, SessionManager
from omemo.types import DeviceInformation
from slixmpp import JID, ClientXMPP
from slixmpp.plugins import register_plugin
from slixmpp_omemo import XEP_0384, TrustLevel
from slixmpp_omemo.xep_0384 import _make_session_manager

from hubd.errors import DeviceDistrusted, EncryptionFailed, OmemoUnavailable
from hubd.xmpp.omemo_store import STORE_FILE, OmemoStore, fingerprint

_LOGGER = logging.getLogger(__name__)

#: Also speak ``urn:xmpp:omemo:2`` (publish its device list and bundle).  Off:
#: slixmpp-omemo 2.2 can encrypt but not decrypt it (no XEP-0420 in slixmpp).
OMEMO2 = False
#: The standard fallback body of an encrypted message: no value ever goes in it.
FALLBACK = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
NS_OLDMEMO = "eu.siacs.conversations.axolotl"
NS_OMEMO2 = "urn:xmpp:omemo:2"
_ENCRYPTED_TAGS = ("{" + NS_OLDMEMO + "}encrypted", "{urn:xmpp:omemo:2}encrypted")
#: OMEMO's own set-up (keys from the store, device list and bundle on PEP) may take this long.
SETUP_TIMEOUT = 60.0
#: Bound on one encryption or decryption (it may fetch a person's device list and bundles).
CRYPTO_TIMEOUT = 30.0
_LIBRARY_LOGGERS = ("omemo", "oldmemo", "twomemo", "slixmpp_omemo", "x3dh", "doubleratchet")
# The store keys hubd adds: whether a person's last command came encrypted.
_PREFERS = "/hubd/encrypted/"


def has_encrypted(xml: Any) -> bool:
    """Whether a message element carries an OMEMO ``<encrypted>`` payload (any version)."""
    return any(child.tag in _ENCRYPTED_TAGS for child in xml)


class HubOmemo(XEP_0384):
    """slixmpp-omemo with hubd's store and trust policy; see the module docstring."""

    name = "xep_0384"
    description = "OMEMO Encryption (hubd)"
    default_config: ClassVar[dict[str, Any]] = {
        "fallback_message": FALLBACK,
        "hub_store": None,
        "policy": None,
    }

    def plugin_init(self) -> None:
        """Hook PEP device lists; the session manager is made by :class:`OmemoService`."""
        self._manager: SessionManager | None = None
        super().plugin_init()

    def session_bind(self, jid: JID) -> None:
        """Nothing here: the library would start an unowned task (see OmemoService.setup)."""
        # The carbons plugin (a dependency) claims carbons; hubd never enables them.
        self.xmpp.plugin["xep_0030"].del_feature(feature="urn:xmpp:carbons:2")
        # The library asks for both versions' device lists; advertising OMEMO 2's would make
        # clients send what hubd cannot decrypt.  (Not through xep_0163.remove_interest:
        # slixmpp's deletes a wrong feature name.)
        if not OMEMO2:
            self.xmpp.plugin["xep_0030"].del_feature(feature=f"{NS_OMEMO2}:devices+notify")

    @property
    def storage(self) -> OmemoStore:
        """The store (opened by OmemoService before the first session)."""
        store: OmemoStore = self.hub_store
        return store

    @property
    def _btbv_enabled(self) -> bool:
        return True

    async def get_session_manager(self) -> SessionManager:
        """The session manager, or OmemoUnavailable while it is not made (no PEP, yet)."""
        if self._manager is None:
            raise OmemoUnavailable("OMEMO is not set up on this connection (yet)")
        return self._manager

    async def make_session_manager(self) -> SessionManager:
        """Load the keys (or make them, the first time) and publish them on PEP."""
        backends: list[Any] = [oldmemo.Oldmemo(self.storage, 1000, None)]
        if OMEMO2:
            backends.insert(0, twomemo.Twomemo(self.storage, 1000, None))
        manager_cls = _make_session_manager(self.xmpp, self)
        manager: SessionManager = await manager_cls.create(
            backends,
            self.storage,
            self.xmpp.boundjid.bare,
            initial_own_label=None,  # OMEMO 0.3 has no device labels
            undecided_trust_level_name=TrustLevel.UNDECIDED.value,
        )
        await manager.ensure_data_consistency()
        await manager.after_history_sync()
        self._manager = manager
        return manager

    async def drop_session_manager(self) -> None:
        """Stop the manager's background task (the connection is gone)."""
        manager, self._manager = self._manager, None
        if manager is not None:
            await manager.shutdown()

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The OMEMO versions loaded (the library's own code assumes both)."""
        return (NS_OMEMO2, NS_OLDMEMO) if OMEMO2 else (NS_OLDMEMO,)

    async def _on_device_list_update(self, msg: Any) -> None:
        # A stranger's device list is not even looked at (no key material for strangers),
        # nor the list of a version hubd does not speak.
        if not self.policy.is_listed(msg["from"].bare) or self._manager is None:
            return
        item = msg["pubsub_event"]["items"]["item"].xml
        if any(item.find(f"{{{ns}}}{tag}") is not None for ns, tag in self._list_tags()):
            await super()._on_device_list_update(msg)

    def _list_tags(self) -> list[tuple[str, str]]:
        return [(ns, "list" if ns == NS_OLDMEMO else "devices") for ns in self.namespaces]

    async def refresh_device_lists(self, jids: set[JID], force_download: bool = False) -> None:
        """The library's, for the loaded versions only: PEP keeps the lists of mutual
        contacts current; others are subscribed to once, and fetched then."""
        manager = await self.get_session_manager()
        roster = self.xmpp.client_roster
        for jid in jids:
            bare = JID(jid.bare)
            if bare.bare == self.xmpp.boundjid.bare:
                continue
            refresh = set(self.namespaces) if force_download else set()
            if not (roster.has_jid(bare) and roster[bare]["subscription"] == "both"):
                for namespace in self.namespaces:
                    key = f"/slixmpp/subscribed/{bare.bare}/{namespace}"
                    if not (await self.storage.load_primitive(key, bool)).maybe(None):
                        await self._subscribe(namespace, bare)
                        refresh.add(namespace)
            for namespace in refresh:
                try:
                    await manager.refresh_device_list(namespace, bare.bare)
                except DeviceListDownloadFailed as err:
                    _LOGGER.debug("OMEMO: no %s device list of %s: %s", namespace, bare, err)

    async def _devices_blindly_trusted(
        self, blindly_trusted: frozenset[DeviceInformation], identifier: str | None
    ) -> None:
        self.policy.trusted(blindly_trusted)

    async def _prompt_manual_trust(
        self, manually_trusted: frozenset[DeviceInformation], identifier: str | None
    ) -> None:
        # Nobody to ask: after an owner distrusted one of a person's devices, a new one
        # is still trusted blindly (and announced), never left undecided.
        manager = await self.get_session_manager()
        trusted = []
        for device in manually_trusted:
            listed = self.policy.is_listed(device.bare_jid)
            level = TrustLevel.BLINDLY_TRUSTED if listed else TrustLevel.DISTRUSTED
            await manager.set_trust(device.bare_jid, device.identity_key, level.value)
            if listed:
                trusted.append(device)
        if trusted:
            self.policy.trusted(frozenset(trusted))


register_plugin(HubOmemo)


class TrustPolicy:
    """Who may have trusted devices (the access lists), and what to do with a new one."""

    def __init__(
        self,
        is_listed: Callable[[str], bool],
        announce: Callable[[str], None],
    ) -> None:
        self.is_listed = is_listed
        self._announce = announce

    def trusted(self, devices: Iterable[DeviceInformation]) -> None:
        """Log and announce devices trusted blindly (one message for them all)."""
        lines = []
        for device in sorted(devices, key=lambda d: (d.bare_jid, d.device_id)):
            lines.append(
                f"New OMEMO device of {device.bare_jid} trusted (not verified): "
                f"{fingerprint(device.identity_key)}"
            )
            _LOGGER.info(
                "OMEMO: trusted a new device of %s (%d) blindly", device.bare_jid, device.device_id
            )
        if lines:
            lines.append("Not theirs? Type: distrust <jid> <fingerprint>")
            self._announce("\n".join(lines))


class OmemoService:
    """The hub's OMEMO: set up per session, encrypt and decrypt, remember who wrote encrypted."""

    def __init__(self, xmpp: ClientXMPP, state_dir: Path, policy: TrustPolicy) -> None:
        self.xmpp = xmpp
        self.store = OmemoStore(state_dir / STORE_FILE)
        if not _LOGGER.isEnabledFor(logging.DEBUG):
            # python-omemo narrates its normal first run at INFO and WARNING ("own
            # device not in the online list" before it adds it); hubd says what counts.
            for name in _LIBRARY_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
        self.policy = policy
        for plugin in ("xep_0060", "xep_0163", "xep_0280", "xep_0334", "xep_0380"):
            xmpp.register_plugin(plugin)
        xmpp.register_plugin("xep_0384", {"hub_store": self.store, "policy": policy})
        self.plugin: HubOmemo = xmpp.plugin["xep_0384"]  # type: ignore[typeddict-item]
        self.ready = asyncio.Event()
        self._setup: asyncio.Task[None] | None = None
        self._unavailable_logged = False
        self._opened = False
        self._last_send: asyncio.Task[None] | None = None
        # One encryption or decryption at a time: two at once on one session would read
        # the same ratchet state and use one message key twice (the library has no lock).
        self._crypto = asyncio.Lock()
        self._sends: set[asyncio.Task[None]] = set()
        xmpp.add_event_handler("session_start", self._on_session_start)
        xmpp.add_event_handler("disconnected", self._on_disconnected)

    async def open(self) -> None:
        """Open the key store (before connecting); raises OmemoUnavailable."""
        await self.store.open()
        self._opened = True

    async def close(self) -> None:
        """Cancel the set-up and the sends under way, stop the manager, close the store."""
        tasks = [*self._sends, *([self._setup] if self._setup is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.plugin.drop_session_manager()
        await self.store.close()

    def _on_session_start(self, _event: Any) -> None:
        if self._opened and self.plugin._manager is None and self._setup is None:
            self._setup = asyncio.create_task(self._set_up(), name="omemo setup")

    def _on_disconnected(self, _event: Any) -> None:
        self.ready.clear()
        if self._setup is not None:
            self._setup.cancel()  # _set_up's finally forgets it

    async def _set_up(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                manager = await self.plugin.make_session_manager()
            own, _ = await manager.get_own_device_information()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            # Typically a server without PEP (XEP-0163): one calm line, then quiet.
            level = logging.DEBUG if self._unavailable_logged else logging.INFO
            self._unavailable_logged = True
            _LOGGER.log(
                level,
                "OMEMO unavailable (%s: %s): chat stays unencrypted until the next connection",
                type(err).__name__,
                err,
            )
            return
        finally:
            self._setup = None
        self.ready.set()
        _LOGGER.info(
            "OMEMO ready in %.2f s: device %d, fingerprint %s",
            loop.time() - started,
            own.device_id,
            fingerprint(own.identity_key),
        )

    # --- crypto --------------------------------------------------------------------

    async def decrypt(self, message: Any) -> tuple[str, DeviceInformation]:
        """The text of an encrypted message and the device that sent it.

        Raises OmemoUnavailable when OMEMO is not set up, DeviceDistrusted for a
        device an owner distrusted; anything the library
        raises for a malformed or undecryptable message is passed on.
        """
        try:
            async with self._crypto, asyncio.timeout(CRYPTO_TIMEOUT):
                decrypted, device = await self.plugin.decrypt_message(message)
        except SenderDistrusted as err:
            raise DeviceDistrusted(str(err)) from err
        if device.trust_level_name == TrustLevel.DISTRUSTED.value:
            raise DeviceDistrusted(f"device {device.device_id} of {device.bare_jid}")
        return str(decrypted["body"] or ""), device

    async def encrypt(self, message: Any) -> Any:
        """``message`` (with its body) encrypted for its recipient's trusted devices.

        Raises EncryptionFailed: then nothing may be sent in the clear instead.
        """
        recipient = JID(message["to"].bare)
        try:
            async with self._crypto, asyncio.timeout(CRYPTO_TIMEOUT):
                encrypted, errors = await self.plugin.encrypt_message(message, recipient)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            raise EncryptionFailed(f"{type(err).__name__}: {err}") from err
        if errors:
            _LOGGER.debug("OMEMO: some devices of %s were left out: %s", recipient, errors)
        if encrypted is None:
            raise EncryptionFailed("nothing to encrypt")
        encrypted["eme"]["namespace"] = NS_OLDMEMO
        encrypted["eme"]["name"] = "OMEMO"
        return encrypted

    def send_encrypted(
        self,
        message: Any,
        *,
        sent: Callable[[], None] | None = None,
        failed: Callable[[EncryptionFailed], None] | None = None,
    ) -> None:
        """Encrypt and send ``message`` in a task; messages go in the order given.

        ``sent`` runs once it is handed to the stream, ``failed`` when it could
        not be encrypted (then nothing is sent; without ``failed`` one line is logged).
        """
        previous = self._last_send
        task = asyncio.create_task(self._send_after(previous, message, sent, failed))
        self._last_send = task
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send_after(
        self,
        previous: asyncio.Task[None] | None,
        message: Any,
        sent: Callable[[], None] | None,
        failed: Callable[[EncryptionFailed], None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # order kept; its failure is its own
        try:
            sealed = await self.encrypt(message)
        except EncryptionFailed as err:
            if failed is not None:
                failed(err)
            else:
                _LOGGER.warning("OMEMO: not sent to %s: %s", message["to"], err)
            return
        sealed.send()
        if sent is not None:
            sent()

    # --- who wrote encrypted ---------------------------------------------------------

    def prefers_encrypted(self, bare: str) -> bool:
        """Whether ``bare``'s last command came encrypted (kept across restarts)."""
        return self._opened and self.store._data.get(_PREFERS + bare) is True

    async def remember(self, bare: str, encrypted: bool) -> None:
        """Note how ``bare`` last wrote (a write only when it changed)."""
        if self._opened and self.prefers_encrypted(bare) != encrypted:
            await self.store.store(_PREFERS + bare, encrypted)

    # --- the hub's own keys ------------------------------------------------------------

    async def own_fingerprint(self) -> str:
        """The hub's fingerprint (OmemoUnavailable before the first set-up)."""
        manager = await self.plugin.get_session_manager()
        own, _ = await manager.get_own_device_information()
        return fingerprint(own.identity_key)
