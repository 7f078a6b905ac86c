"""The access lists as the configuration writes them: checked entries, a device's own grants.

Plain data, no policy: :mod:`hubd.core.config` and :mod:`hubd.core.driver`
validate these keys, and :class:`hubd.core.access.AccessPolicy` compiles them
into roles.  Kept apart from the policy so that the config schema, the driver
interface and the policy never import each other in a circle.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, field_validator

ENTRY = re.compile(r"^([^@/\s*]+|\*)@[^@/\s*]+$")
"""A bare JID (``user@domain``) or a whole domain (``*@domain``)."""


def check_entries(values: tuple[str, ...]) -> tuple[str, ...]:
    """Validate access-list entries (bare JIDs or ``*@domain``); return them lowercased."""
    for value in values:
        if not ENTRY.match(value):
            raise ValueError(f"{value!r}: use a bare JID (user@domain) or *@domain")
    return tuple(v.lower() for v in values)


class DeviceAccess(BaseModel):
    """A device's own ``access:``: roles granted on this device only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owners: tuple[str, ...] = ()
    controllers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()

    @field_validator("owners", "controllers", "readers")
    @classmethod
    def _check_entries(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return check_entries(values)
