"""hubd: a house's hardware as one XMPP IoT concentrator."""

import os

__version__ = "0.1.0"

# pydantic imports zoneinfo, whose search path comes from sysconfig's build
# variables (_sysconfigdata: 0.17 MiB resident) unless PYTHONTZPATH is set.
# hubd has no time-zone field; this is CPython's default path, set before
# anything imports pydantic, and a path the user set is kept.
os.environ.setdefault(
    "PYTHONTZPATH", "/usr/share/zoneinfo:/usr/lib/zoneinfo:/usr/share/lib/zoneinfo:/etc/zoneinfo"
)
