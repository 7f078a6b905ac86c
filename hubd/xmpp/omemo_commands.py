"""Chat commands about the hub's end-to-end encryption: ``fingerprint``, ``devices``, ``distrust``.

Registered in the command table by :class:`hubd.xmpp.client.HubClient` when
OMEMO is on.  ``fingerprint`` is for everyone who may use the hub (to verify
the hub in their client); ``devices`` and ``distrust <jid> <fingerprint>`` are
for the owners.  A distrusted device gets nothing from the hub any more, and
its messages are not decrypted.
"""

from __future__ import annotations

from omemo.session_manager import SessionManager

from hubd.core.access import AccessPolicy, Role
from hubd.errors import OmemoUnavailable
from hubd.people.command import Command, CommandError, Invocation
from hubd.people.commands import ChatCommands
from hubd.people.wording import BULLET
from hubd.xmpp.omemo import OmemoService
from hubd.xmpp.omemo_store import fingerprint, normalise_fingerprint

_LEVELS = {
    "TRUSTED": "verified",
    "BLINDLY_TRUSTED": "trusted, not verified",
    "UNDECIDED": "undecided",
    "DISTRUSTED": "distrusted",
}


class OmemoCommands:
    """The commands; each answers in words (see the module docstring)."""

    def __init__(self, omemo: OmemoService, access: AccessPolicy) -> None:
        self.omemo = omemo
        self.access = access

    def register(self, commands: ChatCommands) -> None:
        """Add the three commands to the table."""
        commands.register(
            Command(
                name="fingerprint",
                usage="fingerprint",
                summary="the hub's OMEMO fingerprint, to verify it in your client",
                role=Role.READER,
                run=self._fingerprint,
            )
        )
        commands.register(
            Command(
                name="devices",
                usage="devices",
                summary="the OMEMO devices of the people in the access lists",
                role=Role.OWNER,
                run=self._devices,
            )
        )
        commands.register(
            Command(
                name="distrust",
                usage="distrust <jid> <fingerprint>",
                summary="stop trusting one OMEMO device (see devices)",
                role=Role.OWNER,
                run=self._distrust,
            )
        )

    async def _manager(self) -> SessionManager:
        try:
            return await self.omemo.plugin.get_session_manager()
        except OmemoUnavailable as err:
            raise CommandError("Encryption is not available on the hub right now.") from err

    async def _fingerprint(self, call: Invocation) -> str:
        manager = await self._manager()
        own, _ = await manager.get_own_device_information()
        key = fingerprint(own.identity_key)
        return f"The hub's OMEMO fingerprint (device {own.device_id}):\n{key}"

    async def _devices(self, call: Invocation) -> str:
        manager = await self._manager()
        lines = []
        for bare in self.access.listed_jids():
            for device in sorted(
                await manager.get_device_information(bare), key=lambda d: d.device_id
            ):
                level = _LEVELS.get(device.trust_level_name, device.trust_level_name.lower())
                active = "" if any(on for _, on in device.active) else ", inactive"
                lines.append(
                    f"{BULLET}{bare} {device.device_id}: {fingerprint(device.identity_key)} "
                    f"({level}{active})"
                )
        if not lines:
            return "No OMEMO devices known yet (they appear once people write encrypted)."
        return "OMEMO devices:\n" + "\n".join(lines)

    async def _distrust(self, call: Invocation) -> str:
        if len(call.args) < 2:
            raise CommandError("Usage: distrust <jid> <fingerprint> (type devices for them)")
        bare = call.args[0].lower().split("/")[0]
        wanted = normalise_fingerprint("".join(call.args[1:]))
        manager = await self._manager()
        for device in await manager.get_device_information(bare):
            if normalise_fingerprint(fingerprint(device.identity_key)) == wanted:
                await manager.set_trust(bare, device.identity_key, "DISTRUSTED")
                return f"Device {device.device_id} of {bare} distrusted: the hub ignores it now."
        raise CommandError(f"No device of {bare} has that fingerprint. Type devices for the list.")
