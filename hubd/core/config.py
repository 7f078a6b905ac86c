"""The configuration file: one YAML file, validated whole, every error located.

Validation runs in two phases, as ESPHome's ``platform:`` does: first the
top-level keys (``xmpp``, ``access``, ``state_dir``, ``gpio``, ``ble``,
``devices``), then each device by the ``config_model`` of its ``driver:``.
Every problem found is reported with file, line and key path, e.g.
``config.yaml:14: devices[2] (porch-light): pin: Input should be ...``;
``hubd check`` prints them all, ``hubd run`` refuses to start with any.
"""

from __future__ import annotations

import logging
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from hubd.core.access_lists import ENTRY, check_entries
from hubd.core.driver import DriverConfig
from hubd.core.limits import LimitSettings
from hubd.core.metrics_settings import MetricsSettings as MetricsSettings  # re-exported
from hubd.core.omemo_settings import OmemoSettings
from hubd.core.registry import DriverRegistry, UnknownDriver
from hubd.core.remote_settings import RemoteSettings, remote_problems
from hubd.core.settings import (
    BleSettings,
    BusSettings,
    DiscoverySettings,
    EventsSettings,
    GpioSettings,
    PubSubSettings,
    UploadSettings,
)
from hubd.core.yamlsource import Path_, YamlDocument, YamlSyntaxError, parse_yaml
from hubd.errors import BrokenPlugin, ConfigError, ConfigProblem

_LOGGER = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("/etc/hubd/config.yaml")
CREDENTIAL_NAME = "xmpp-password"

_JID = re.compile(r"^[^@/\s]+@[^@/\s]+(/\S+)?$")


class XmppSettings(BaseModel):
    """``xmpp:``: the one account hubd logs in as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jid: str = Field(description="the hub's account, optionally with /resource")
    password_file: Path | None = Field(default=None, description="file holding the password")
    password_env: str | None = Field(default=None, description="environment variable instead")
    password: SecretStr | None = Field(
        default=None, description="discouraged: the password itself (a warning at every start)"
    )
    server: str | None = Field(default=None, description="connect here instead of DNS SRV")
    port: int | None = Field(default=None, ge=1, le=65535)
    ca_file: Path | None = Field(default=None, description="extra trust anchor (PEM)")

    @field_validator("jid")
    @classmethod
    def _check_jid(cls, value: str) -> str:
        if not _JID.match(value):
            raise ValueError("must look like user@domain or user@domain/resource")
        return value


class AccessSettings(BaseModel):
    """``access:``: who may do what; everyone else is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owners: tuple[str, ...] = ()
    controllers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()
    provisioning: str | None = Field(
        default=None,
        description="XEP-0324 provisioning server (JID or component) asked about everyone else",
    )
    ask_owners: bool = Field(
        default=False,
        description="ask the owners by chat about presence subscriptions of everyone else",
    )

    @field_validator("owners", "controllers", "readers")
    @classmethod
    def _check_entries(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return check_entries(values)

    @field_validator("provisioning")
    @classmethod
    def _check_provisioning(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([^@/\s]+@)?[^@/\s]+(/\S+)?", value):
            raise ValueError(
                "must be a component (prov.example.org) or a JID (prov@example.org/server)"
            )
        return value


class RoomSettings(BaseModel):
    """One entry of ``rooms:``: a group chat (XEP-0045) the hub joins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jid: str = Field(description="the room, e.g. house@conference.example.org")
    nick: str = Field(default="hub", min_length=1, description="the hub's nickname there")
    password: str | None = Field(default=None, description="the room's password, if it has one")
    devices: tuple[str, ...] = Field(default=(), description="devices whose events are posted")

    @field_validator("jid")
    @classmethod
    def _check_room(cls, value: str) -> str:
        if not ENTRY.match(value) or value.startswith("*@"):
            raise ValueError("must be a room's bare JID, like house@conference.example.org")
        return value.lower()


class _TopLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    xmpp: XmppSettings
    access: AccessSettings = AccessSettings()
    state_dir: Path = Path("/var/lib/hubd")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    gpio: GpioSettings = GpioSettings()
    ble: BleSettings = BleSettings()
    metrics: MetricsSettings | None = None
    events: EventsSettings = EventsSettings()
    rooms: tuple[RoomSettings, ...] = ()
    limits: LimitSettings = LimitSettings()
    uploads: UploadSettings = UploadSettings()
    discovery: DiscoverySettings | None = None
    pubsub: PubSubSettings | None = None
    omemo: OmemoSettings = Field(default_factory=OmemoSettings)
    remotes: tuple[RemoteSettings, ...] = ()
    devices: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration, paths resolved against the file's folder."""

    path: Path
    xmpp: XmppSettings
    password: SecretStr
    access: AccessSettings
    state_dir: Path
    log_level: str
    bus: BusSettings
    devices: tuple[DriverConfig, ...]
    events: EventsSettings = field(default_factory=EventsSettings)
    metrics: MetricsSettings | None = None
    rooms: tuple[RoomSettings, ...] = ()
    limits: LimitSettings = field(default_factory=LimitSettings)
    uploads: UploadSettings = field(default_factory=UploadSettings)
    discovery: DiscoverySettings | None = None
    pubsub: PubSubSettings | None = None
    omemo: OmemoSettings = field(default_factory=OmemoSettings)
    remotes: tuple[RemoteSettings, ...] = ()


def load_config(
    path: Path,
    registry: DriverRegistry | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read and validate ``path``; raise ConfigError listing every problem."""
    registry = registry or DriverRegistry()
    environ = os.environ if environ is None else environ
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([ConfigProblem(name, None, "", f"cannot read: {err.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(name, None, "", "not UTF-8 text")]) from None
    try:
        doc = parse_yaml(text)
    except YamlSyntaxError as err:
        raise ConfigError([ConfigProblem(name, err.line, "", str(err))]) from None
    return _Validator(path, doc, registry, environ).run()


class _Validator:
    def __init__(
        self, path: Path, doc: YamlDocument, registry: DriverRegistry, environ: Mapping[str, str]
    ) -> None:
        self.path = path
        self.doc = doc
        self.registry = registry
        self.environ = environ
        self.problems: list[ConfigProblem] = []
        self.base = path.parent

    def problem(self, loc: Path_, message: str, line: int | None = None) -> None:
        where = line if line is not None else self.doc.line_of(loc)
        self.problems.append(ConfigProblem(str(self.path), where, self.format_path(loc), message))

    def format_path(self, loc: Path_) -> str:
        out = ""
        data = self.doc.data
        for index, part in enumerate(loc):
            if isinstance(part, int):
                out += f"[{part}]"
                if index == 1 and loc[0] == "devices":
                    device_id = _device_id(data, part)
                    if device_id:
                        out += f" ({device_id})"
                    if len(loc) > 2:
                        out += ":"
                continue
            sep = "" if not out or out.endswith(":") else "."
            out += f"{' ' if out.endswith(':') else sep}{part}"
        return out

    def run(self) -> Config:
        for loc, line in self.doc.duplicates:
            self.problem(loc, "duplicate key (the first one would be silently replaced)", line)
        data = self.doc.data
        if not isinstance(data, dict):
            self.problem((), "the file must be a mapping of keys (xmpp:, access:, devices:, ...)")
            raise ConfigError(self.problems)
        top: _TopLevel | None = None
        try:
            top = _TopLevel.model_validate(data)
        except ValidationError as err:
            self.add_validation_errors(err, (), _TopLevel)
        devices = self.validate_devices(data.get("devices"))
        password = SecretStr("")
        if top is not None:
            password = self.resolve_password(top.xmpp)
            self.check_rooms(top.rooms, {d.id for d in devices})
            self.check_pubsub(top, {d.id for d in devices})
            for loc, message in remote_problems(
                top.remotes,
                top.xmpp.jid,
                (d.id for d in devices),
                (d.driver.split(".", 1)[0] for d in devices),
            ):
                self.problem(("remotes", *loc), message)
        if self.problems or top is None:
            raise ConfigError(sorted(self.problems, key=lambda p: (p.line or 0, p.path)))
        return Config(
            path=self.path,
            xmpp=top.xmpp.model_copy(
                update={
                    "password_file": self.resolve(top.xmpp.password_file),
                    "ca_file": self.resolve(top.xmpp.ca_file),
                }
            ),
            password=password,
            access=top.access,
            state_dir=self.base / top.state_dir,
            log_level=top.log_level,
            bus=BusSettings(
                gpio=top.gpio,
                ble=top.ble.model_copy(update={"replay": self.resolve(top.ble.replay)}),
            ),
            devices=tuple(devices),
            metrics=top.metrics,
            events=top.events,
            rooms=top.rooms,
            limits=top.limits,
            uploads=top.uploads,
            discovery=top.discovery,
            pubsub=top.pubsub,
            omemo=top.omemo,
            remotes=top.remotes,
        )

    def check_rooms(self, rooms: Sequence[RoomSettings], device_ids: set[str]) -> None:
        """Every device a room names must exist (a typo would post nothing, silently)."""
        for index, room in enumerate(rooms):
            for position, device in enumerate(room.devices):
                if device not in device_ids:
                    self.problem(
                        ("rooms", index, "devices", position),
                        f"no device {device!r}" + _suggest(device, sorted(device_ids)),
                    )

    def check_pubsub(self, top: _TopLevel, device_ids: set[str]) -> None:
        """Published devices must exist; PEP's audience must be the access lists alone."""
        if top.pubsub is None:
            return
        for position, device in enumerate(top.pubsub.devices or ()):
            if device not in device_ids:
                self.problem(
                    ("pubsub", "devices", position),
                    f"no device {device!r}" + _suggest(device, sorted(device_ids)),
                )
        widened = [f"access.{k}" for k in ("provisioning", "ask_owners") if getattr(top.access, k)]
        widened += ["discovery"] if top.discovery is not None else []  # the registry sees it too
        if top.pubsub.pep and widened:
            # PEP items go to everyone who sees the hub's presence (access_model=presence),
            # and these approve presence beyond the lists: readers the lists never named.
            self.problem(
                ("pubsub", "service"),
                "pep shares the items with everyone who sees the hub online, and "
                f"{widened[0]} lets others beyond the lists see it: use a service JID",
            )

    def resolve(self, value: Path | None) -> Path | None:
        return None if value is None else self.base / value.expanduser()

    def add_validation_errors(
        self, err: ValidationError, prefix: Path_, model: type[BaseModel] | None
    ) -> None:
        for item in err.errors(include_url=False):
            loc = (*prefix, *item["loc"])
            kind = item["type"]
            if kind == "extra_forbidden":
                message = "unknown key" + _suggest(str(loc[-1]), _allowed_keys(model, loc, prefix))
            elif kind == "missing":
                message = "required key is missing"
            else:
                message = item["msg"]
                if message.startswith("Value error, "):
                    message = message.removeprefix("Value error, ")
            self.problem(loc, message)

    def validate_devices(self, raw: Any) -> list[DriverConfig]:
        if not isinstance(raw, list):
            return []
        devices: list[DriverConfig] = []
        seen_ids: dict[str, int] = {}
        claims: dict[str, str] = {}
        for index, entry in enumerate(raw):
            loc: Path_ = ("devices", index)
            if not isinstance(entry, dict):
                continue  # the top-level model already reported it
            kind = entry.get("driver")
            if not isinstance(kind, str):
                if "driver" not in entry:
                    self.problem(loc, "required key is missing: driver" + self.installed())
                continue
            try:
                driver_cls = self.registry.load(kind)
            except UnknownDriver:
                self.problem((*loc, "driver"), f"unknown driver {kind!r}" + self.installed())
                continue
            except BrokenPlugin as err:
                self.problem(
                    (*loc, "driver"),
                    f"driver {kind!r} cannot be loaded: {err} (fix or uninstall that package)",
                )
                continue
            try:
                config = driver_cls.config_model.model_validate(entry)
            except ValidationError as err:
                self.add_validation_errors(err, loc, driver_cls.config_model)
                continue
            first = seen_ids.get(config.id)
            if first is not None:
                self.problem((*loc, "id"), f"duplicate device id (also devices[{first}])")
                continue
            seen_ids[config.id] = index
            for claim in config.claims():
                holder = claims.get(claim)
                if holder is not None:
                    self.problem(loc, f"{claim} is already used by device {holder!r}")
                claims[claim] = config.id
            devices.append(config)
        return devices

    def installed(self) -> str:
        kinds = self.registry.kinds()
        return f" (installed: {', '.join(kinds)})" if kinds else " (no drivers installed)"

    def resolve_password(self, xmpp: XmppSettings) -> SecretStr:
        given = [
            key
            for key in ("password_file", "password_env", "password")
            if getattr(xmpp, key) is not None
        ]
        if len(given) > 1:
            self.problem(("xmpp", given[1]), f"set only one of {' or '.join(given)}")
            return SecretStr("")
        if xmpp.password is not None:
            # Works, because some users insist; but the file is often world-readable,
            # copied into backups and pasted into bug reports.  Never log the value.
            _LOGGER.warning(
                "%s: the XMPP password is in the config file: prefer password_file "
                "(mode 0600), password_env or a systemd credential",
                self.path,
            )
            if not xmpp.password.get_secret_value():
                self.problem(("xmpp", "password"), "the password is empty")
            return xmpp.password
        if xmpp.password_file is not None:
            return self.read_password_file(
                self.base / xmpp.password_file, ("xmpp", "password_file")
            )
        if xmpp.password_env is not None:
            value = self.environ.get(xmpp.password_env, "")
            if not value:
                self.problem(
                    ("xmpp", "password_env"), f"environment variable {xmpp.password_env} is not set"
                )
            return SecretStr(value)
        credentials = self.environ.get("CREDENTIALS_DIRECTORY")
        if credentials:
            return self.read_password_file(Path(credentials) / CREDENTIAL_NAME, ("xmpp",))
        self.problem(
            ("xmpp",),
            "no password: set password_file or password_env "
            f"(or run under systemd with LoadCredential={CREDENTIAL_NAME}:...)",
        )
        return SecretStr("")

    def read_password_file(self, file: Path, loc: Path_) -> SecretStr:
        try:
            value = file.read_text(encoding="utf-8").strip("\r\n")
        except FileNotFoundError:
            self.problem(loc, f"password file {file} does not exist")
            return SecretStr("")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            self.problem(loc, f"cannot read password file {file}: {reason}")
            return SecretStr("")
        if not value:
            self.problem(loc, f"password file {file} is empty")
        return SecretStr(value)


def _device_id(data: Any, index: int) -> str | None:
    devices = data.get("devices") if isinstance(data, dict) else None
    if isinstance(devices, list) and index < len(devices) and isinstance(devices[index], dict):
        device_id = devices[index].get("id")
        return device_id if isinstance(device_id, str) else None
    return None


def _allowed_keys(model: type[BaseModel] | None, loc: Path_, prefix: Path_) -> Sequence[str]:
    """The keys the model at ``loc``'s parent accepts, for a did-you-mean hint."""
    current: Any = model
    for part in loc[len(prefix) : -1]:
        if isinstance(part, int) or current is None:
            return []
        info = current.model_fields.get(part)
        annotation = info.annotation if info is not None else None
        # An optional section (``X | None``) suggests the keys of X.
        candidates = (annotation, *typing.get_args(annotation))
        current = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    if current is None:
        return []
    return list(current.model_fields)


def _suggest(key: str, allowed: Sequence[str]) -> str:
    if not allowed:
        return ""
    # Imported for a mistake only (0.2 MiB a valid configuration does not pay).
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (allowed: {', '.join(allowed)})"
