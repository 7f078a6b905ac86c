"""The chat commands' requests to remote hubs (:class:`~hubd.people.remote_commands.RemoteDevices`).

A ``read`` is a momentary XEP-0323 readout through :class:`RemoteReader`; a
``set`` first asks the remote for the device's control form (XEP-0325
``getForm``: which fields it may set, and their types, as the remote says),
then submits that form with the one value.  Both pass this hub's own checks
(:meth:`RemoteControl.check`) before anything is sent, and the remote's
refusal comes back in its own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree.ElementTree import Element, SubElement

from hubd.core import xsd
from hubd.core.remote_source import RemoteSource
from hubd.errors import BadRequest, HubdError
from hubd.people.command import CommandError
from hubd.people.remote_commands import RemoteReading, RemoteValue
from hubd.xmpp.control_xml import NS_CONTROL, NS_DATA_FORMS
from hubd.xmpp.remote_control import RemoteControl
from hubd.xmpp.remote_readout import RemoteReader
from hubd.xmpp.sensordata_xml import NS_SENSORDATA, parse_field_elements, qname

_TRUE = frozenset({"on", "true", "yes", "1"})
_FALSE = frozenset({"off", "false", "no", "0"})


class RemoteDevicesOverXmpp:
    """Reads and sets on remote hubs' devices for the chat commands."""

    def __init__(self, reader: RemoteReader, control: RemoteControl) -> None:
        self.reader = reader
        self.control = control

    async def read(
        self, source: RemoteSource, node_ids: Sequence[str], fields: Sequence[str]
    ) -> dict[str, RemoteReading]:
        """A momentary readout (status fields too) of ``node_ids``, by node id."""
        request = Element(
            qname(NS_SENSORDATA, "req"), {"seqnr": "0", "momentary": "true", "status": "true"}
        )
        for name in fields:
            SubElement(request, qname(NS_SENSORDATA, "field"), {"name": name})
        answer = await self.reader.read(source, request, list(node_ids))
        out: dict[str, RemoteReading] = {}
        for node in answer.nodes:
            reading = out.setdefault(node.get("nodeId", ""), RemoteReading())
            try:
                for stamp in node.findall(qname(NS_SENSORDATA, "timestamp")):
                    moment = xsd.parse_datetime(stamp.get("value", ""))
                    reading.values.extend(
                        RemoteValue(f.name, f.value, f.timestamp, f.unit)
                        for f in parse_field_elements(stamp, moment)
                    )
            except (BadRequest, ValueError) as err:
                reading.error = f"an unreadable answer ({err})"
        for error in answer.errors:
            out.setdefault(error.get("nodeId", ""), RemoteReading()).error = error.text or "failed"
        return out

    async def write(
        self, source: RemoteSource, node_id: str, field: str | None, raw: str, actor: str
    ) -> str:
        """Set one field of ``node_id`` through its control form; the words for people."""
        label = f"{source.id}/{node_id}"
        ref = {"nodeId": node_id, "sourceId": source.id}
        get_form = Element(qname(NS_CONTROL, "getForm"))
        SubElement(get_form, qname(NS_CONTROL, "node"), ref)
        form = await self._ask(get_form, "get", actor, label, f"{node_id} (control form)")
        if form is None or form.tag != qname(NS_DATA_FORMS, "x"):
            raise CommandError(f"{label} has nothing to set.")
        kinds = {
            f.get("var", ""): f.get("type", "text-single")
            for f in form.findall(qname(NS_DATA_FORMS, "field"))
            if f.get("var") and f.get("type") not in ("hidden", "fixed")
        }
        name = _pick(label, kinds, field)
        value = raw
        if kinds[name] == "boolean":
            word = raw.lower()
            if word not in _TRUE | _FALSE:
                raise CommandError(f"Cannot set {label} {name} to '{raw}'. Try: on or off")
            value = "true" if word in _TRUE else "false"
        request = Element(qname(NS_CONTROL, "set"))
        SubElement(request, qname(NS_CONTROL, "node"), ref)
        submit = SubElement(request, qname(NS_DATA_FORMS, "x"), {"type": "submit"})
        entry = SubElement(submit, qname(NS_DATA_FORMS, "field"), {"var": name})
        SubElement(entry, qname(NS_DATA_FORMS, "value")).text = value
        await self._ask(request, "set", actor, label, f"{node_id}.{name} = {value!r}")
        shown = ("on" if value == "true" else "off") if kinds[name] == "boolean" else value
        return f"{label}: {name} {shown}"

    async def _ask(
        self, request: Element, kind: str, actor: str, label: str, what: str
    ) -> Element | None:
        try:
            source, forwarded = self.control.check(request, actor)
        except HubdError as err:
            raise CommandError(f"{label}: {err}") from None
        audited = f"{source.id}: {what}"
        outcome = await self.control.ask(source, forwarded, kind, actor, audited)
        if outcome.error is not None:
            verb = "not changed" if kind == "set" else "cannot be set"
            raise CommandError(f"{label} {verb}: {outcome.error.text}")
        return outcome.result


def _pick(label: str, kinds: dict[str, str], field: str | None) -> str:
    names = ", ".join(kinds) or "none can be set"
    if field is None:
        if len(kinds) == 1:
            return next(iter(kinds))
        raise CommandError(f"Set which field of {label}? Fields: {names}.")
    wanted = field.lower()
    exact = [n for n in kinds if n.lower() == wanted]
    found = exact or [n for n in kinds if n.lower().startswith(wanted)]
    if len(found) == 1:
        return found[0]
    raise CommandError(f"{label} has no field '{field}' to set; fields: {names}.")
