"""``ble.ruuvi``: a RuuviTag environmental sensor (data format 5)."""

from __future__ import annotations

from .advertisement import Advertisement
from .passive import LAST_SEEN, RSSI, PassiveConfig, PassiveDriver, Reading, measurement_field
from .ruuvi import RUUVI_COMPANY_ID, parse_ruuvi

__all__ = ["RuuviConfig", "RuuviDriver"]

_FIELDS = (
    measurement_field("temperature", "°C"),
    measurement_field("humidity", "%"),
    measurement_field("pressure", "hPa"),
    measurement_field("acceleration_x", "mG"),
    measurement_field("acceleration_y", "mG"),
    measurement_field("acceleration_z", "mG"),
    measurement_field("voltage", "V"),
    measurement_field("tx_power", "dBm"),
    measurement_field("movement_counter", None),
    measurement_field("measurement_sequence", None),
)


class RuuviConfig(PassiveConfig):
    """Keys of a ``ble.ruuvi`` device."""


class RuuviDriver(PassiveDriver[RuuviConfig]):
    """A RuuviTag, heard passively (manufacturer data of Ruuvi Innovations, format 5 / RAWv2).

    Options: ``address``; ``timeout`` (seconds without an advertisement
    before the node is offline, default 600).

    Fields: ``temperature`` (°C), ``humidity`` (%), ``pressure`` (hPa),
    ``acceleration_x``/``_y``/``_z`` (mG), ``voltage`` (the battery's, V),
    ``tx_power`` (dBm), ``movement_counter``, ``measurement_sequence``; plus
    ``rssi`` (dBm) and ``last_seen``.  A quantity the tag reports as not
    available is left out.  Pushes each new measurement once.
    """

    kind = "ble.ruuvi"
    config_model = RuuviConfig
    measurement_fields = _FIELDS
    static_fields = (*_FIELDS, RSSI, LAST_SEEN)

    def parse(self, advert: Advertisement) -> Reading | None:
        """Decode format 5; other Ruuvi formats are reported as unreadable."""
        data = advert.manufacturer_data.get(RUUVI_COMPANY_ID)
        if data is None:
            return None
        values = parse_ruuvi(data)
        return Reading(values=values, key=tuple(values))
