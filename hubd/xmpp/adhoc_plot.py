"""The ad-hoc command "Plot a device" (XEP-0050): the chat command ``plot`` behind a form.

One stage, like the other commands of :mod:`hubd.xmpp.adhoc`: pick a device,
optionally type fields, pick a period.  The chat command does the parsing,
the access checks, the drawing and the upload; the chart then arrives as a
chat message (its URL as body and as XEP-0066 OOB, so the client shows it),
and the completed command's note says so with the same URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slixmpp import JID

from hubd.core.access import Role
from hubd.people.command import SharedFile
from hubd.people.history_summary import DEFAULT_PERIOD, PERIODS
from hubd.xmpp.adhoc import AdhocCommand, AdhocService, Session, _add_device_picker

SendLink = Callable[[JID | str, str], None]


def enable_plot(adhoc: AdhocService, send_link: SendLink) -> None:
    """Offer "Plot a device"; the picture goes out through ``send_link``."""
    form = _PlotForm(adhoc, send_link)
    adhoc.register(AdhocCommand("plot", "Plot a device", Role.READER, form.start))


class _PlotForm:
    def __init__(self, adhoc: AdhocService, send_link: SendLink) -> None:
        self.adhoc = adhoc
        self.send_link = send_link

    async def start(self, requester: JID, session: Session) -> Session:
        nodes = self.adhoc.commands.lookup.nodes_for(str(requester))
        if not nodes:
            return self.adhoc._done(session, "No devices are configured.")
        form = self.adhoc._form(
            "Plot a device", "Pick a device and a period; the chart arrives as a chat message."
        )
        _add_device_picker(form, nodes)
        form.add_field(
            var="fields",
            ftype="text-single",
            label="Fields (optional)",
            desc="empty: every number and switch; or e.g. temperature humidity",
        )
        form.add_field(
            var="period",
            ftype="list-single",
            label="Period",
            required=True,
            options=[{"label": f"last {words}", "value": key} for key, words in PERIODS.items()],
            value=DEFAULT_PERIOD,
        )
        return self.adhoc._ask(session, form, self.submit)

    async def submit(self, payload: Any, session: Session) -> Session:
        values = self.adhoc._submitted(payload)
        device = str(values.get("device") or "").strip()
        fields = str(values.get("fields") or "").strip()
        period = str(values.get("period") or DEFAULT_PERIOD).strip()
        requester = session["from"]
        # The chat command parses and checks access: one path for chat and forms.
        reply = await self.adhoc.commands.handle(str(requester), f"plot {device} {fields} {period}")
        if isinstance(reply, SharedFile):
            self.send_link(requester, reply)
            return self.adhoc._done(session, f"The chart is on its way as a message: {reply}")
        return self.adhoc._done(session, reply, ok=False)
