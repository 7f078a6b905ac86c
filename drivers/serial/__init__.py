"""Serial-port drivers: line-oriented devices (``serial.lines``) and DSMR/P1 meters.

The ``*_protocol`` modules are pure bytes-to-values parsers with no I/O, so they are tested on
captured data without a port; the drivers (``serial.lines``, ``serial.dsmr``) wrap them around
pyserial.
"""
