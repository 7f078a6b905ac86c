"""The core: the pure model, the driver port, the hub and its nodes, access, the config schema.

It knows no XMPP, no hardware library and no driver by name (drivers come through the registry).
It may import only the standard library, pydantic, PyYAML and hubd.errors.
"""
