"""Test and demo helpers for hubd: driver fakes, a real Prosody, the demo's weather station.

Shipped with hubd for drivers' own tests; nothing in hubd or drivers imports it.
It may import hubd.core and hubd.errors (and itself); no hardware library (the station is a pty).
"""
