"""The machine interface: XEP-0323 readouts, XEP-0325 control, XEP-0326 concentrator."""

from __future__ import annotations

from typing import Any

from slixmpp import ClientXMPP
from slixmpp.xmlstream.handler import Callback

from hubd.access import AccessPolicy
from hubd.hub import Hub
from hubd.xmpp.concentrator import NS_CONCENTRATORS, Concentrator
from hubd.xmpp.control import ControlService
from hubd.xmpp.sensordata import ReadoutService
from hubd.xmpp.stanzas import PayloadMatcher, payload, send_error, send_result


class IotServices:
    """Registers the IoT protocol handlers on one slixmpp client."""

    def __init__(self, xmpp: ClientXMPP, hub: Hub, access: AccessPolicy) -> None:
        self.readout = ReadoutService(xmpp, hub, access)
        self.control = ControlService(xmpp, hub, access)
        self.concentrator = Concentrator(hub, access)
        xmpp.register_handler(
            Callback(
                "iot concentrator",
                PayloadMatcher("iq", NS_CONCENTRATORS, types=("get", "set")),
                self._on_concentrator,
            )
        )
        xmpp.plugin["xep_0030"].add_feature(NS_CONCENTRATORS)

    def _on_concentrator(self, iq: Any) -> None:
        element = payload(iq, "{" + NS_CONCENTRATORS + "}")
        assert element is not None
        answer = self.concentrator.handle(str(iq["from"]), element)
        if answer.error is None:
            send_result(iq, answer.payload)
        else:
            send_error(iq, answer.error, beside=answer.payload)

    async def close(self) -> None:
        """Stop the readouts in flight."""
        await self.readout.close()
