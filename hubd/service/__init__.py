"""The daemon around the hub: the composition root (app), the hubd command, systemd, logs, metrics.

Also the hubctl command (hubctl*.py), a client of the hub's machine interface.

The only floor that sees every other: it wires config, drivers, events and XMPP together.
It may import everything in hubd; nothing in hubd imports it (hubd/__main__.py aside).
"""
