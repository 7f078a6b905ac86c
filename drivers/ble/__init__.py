"""Bluetooth LE advertisement drivers.

The modules ``bthome``, ``pvvx`` and ``ruuvi`` are pure parsers: they turn the
bytes of one passive advertisement (service data or manufacturer data) into
:class:`~drivers.ble.measurement.Measurement` values and do no I/O, so they are
tested on published sample payloads without a radio.
"""
