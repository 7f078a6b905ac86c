"""What a configuration reload (SIGHUP) changes: devices by id, and what needs a restart.

Devices are compared by id: an id only in the new file is added, one only in
the old file is removed, and one whose settings differ in any way is
restarted (removed, then added), since a driver reads its settings once, at
construction.  ``access:`` is applied live.  The rest (the XMPP account, the
bus settings, ``state_dir``, ``log_level``, ``metrics``, ``events``, ``pubsub``) is read once at
start: a change there is reported as needing a restart, never half-applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubd.core.config import Config
from hubd.core.driver import DriverConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceDiff:
    """The devices a reload adds, removes and restarts, in the new file's order."""

    added: tuple[DriverConfig, ...]
    removed: tuple[str, ...]
    changed: tuple[DriverConfig, ...]

    @property
    def empty(self) -> bool:
        """True when no device changes."""
        return not (self.added or self.removed or self.changed)

    def summary(self) -> str:
        """``+1 -1 ~0 devices``."""
        return f"+{len(self.added)} -{len(self.removed)} ~{len(self.changed)} devices"


def diff_devices(old: Config, new: Config) -> DeviceDiff:
    """Compare the device lists of two configurations by id."""
    before = {device.id: device for device in old.devices}
    after = {device.id: device for device in new.devices}
    return DeviceDiff(
        added=tuple(d for d in new.devices if d.id not in before),
        removed=tuple(d.id for d in old.devices if d.id not in after),
        # Pydantic models compare by type and every field: any edit restarts the device,
        # except its access: grants, which apply live like the top-level lists.
        changed=tuple(
            d for d in new.devices if d.id in before and _settings(before[d.id]) != _settings(d)
        ),
    )


def _settings(device: DriverConfig) -> DriverConfig:
    return device.model_copy(update={"access": None})


def access_changed(old: Config, new: Config) -> bool:
    """True when the access lists, a device's grants or the abuse limits differ."""
    grants = {d.id: d.access for d in old.devices}, {d.id: d.access for d in new.devices}
    return old.access != new.access or grants[0] != grants[1] or old.limits != new.limits


def needs_restart(old: Config, new: Config) -> list[str]:
    """The top-level settings that changed but only take effect at the next start."""
    changed: list[str] = []
    if old.xmpp != new.xmpp or (old.password.get_secret_value() != new.password.get_secret_value()):
        changed.append("xmpp")
    if old.bus.gpio != new.bus.gpio:
        changed.append("gpio")
    if old.bus.ble != new.bus.ble:
        changed.append("ble")
    if old.state_dir != new.state_dir:
        changed.append("state_dir")
    if old.log_level != new.log_level:
        changed.append("log_level")
    if old.metrics != new.metrics:
        changed.append("metrics")
    if old.events != new.events:
        changed.append("events")
    if old.discovery != new.discovery:
        changed.append("discovery")
    if old.pubsub != new.pubsub:
        changed.append("pubsub")
    if old.access.provisioning != new.access.provisioning:
        changed.append("access.provisioning")
    if old.remotes != new.remotes:
        changed.append("remotes")
    return changed
