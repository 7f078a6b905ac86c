"""``ble.xiaomi_pvvx``: a Xiaomi thermometer on the pvvx or ATC1441 custom firmware."""

from __future__ import annotations

from .advertisement import Advertisement
from .passive import LAST_SEEN, RSSI, PassiveConfig, PassiveDriver, Reading, measurement_field
from .pvvx import PVVX_SERVICE_UUID, parse_pvvx

__all__ = ["PvvxConfig", "PvvxDriver"]

_FIELDS = (
    measurement_field("temperature", "°C"),
    measurement_field("humidity", "%"),
    measurement_field("battery", "%"),
    measurement_field("voltage", "V"),
    measurement_field("reed_switch", None, boolean=True),
    measurement_field("trigger_output", None, boolean=True),
    measurement_field("temperature_trigger", None, boolean=True),
    measurement_field("humidity_trigger", None, boolean=True),
)


class PvvxConfig(PassiveConfig):
    """Keys of a ``ble.xiaomi_pvvx`` device."""


class PvvxDriver(PassiveDriver[PvvxConfig]):
    """A Xiaomi LYWSD03MMC, CGG1, MHO-C401 ... thermometer on the pvvx/ATC firmware.

    Heard passively: the firmware's "custom" (pvvx) or "atc1441" advertising
    format, service data 0x181A (choose "BTHome" in the firmware and use
    ``ble.bthome`` instead).  Options: ``address``; ``timeout`` (seconds
    without an advertisement before the node is offline, default 600).

    Fields: ``temperature`` (°C), ``humidity`` (%), ``battery`` (%),
    ``voltage`` (the battery's, V), and with the pvvx format ``reed_switch``,
    ``trigger_output``, ``temperature_trigger``, ``humidity_trigger``
    (booleans); plus ``rssi`` (dBm) and ``last_seen``.  Pushes each new
    measurement once (the firmware resends each one several times).
    """

    kind = "ble.xiaomi_pvvx"
    config_model = PvvxConfig
    measurement_fields = _FIELDS
    static_fields = (*_FIELDS, RSSI, LAST_SEEN)

    def parse(self, advert: Advertisement) -> Reading | None:
        """Decode the 0x181A service data; the packet counter tells resends apart."""
        data = advert.service_data.get(PVVX_SERVICE_UUID)
        if data is None:
            return None
        measurements = parse_pvvx(data)
        values = [m for m in measurements if m.name != "packet_id"]
        counter = next((m.value for m in measurements if m.name == "packet_id"), None)
        return Reading(values=values, key=(counter, tuple(values)))
