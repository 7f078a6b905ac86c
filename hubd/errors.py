"""The one exception tree of hubd.

Everything hubd raises on purpose derives from :class:`HubdError`::

    HubdError
    ├── ConfigError               the configuration is invalid (file:line: key path: message)
    ├── BrokenPlugin              an installed plug-in (a driver package) cannot be loaded
    ├── XmppAuthError             the server refused the account's credentials
    ├── BadRequest                a request is malformed (wrong element, attribute or value)
    ├── NodeNotFound              no such node (or the caller may not know it exists)
    ├── AccessDenied              the caller lacks the role for this operation
    ├── DriverError               a driver could not do what was asked
    │   ├── DriverUnavailable     the hardware is absent, unplugged or not answering
    │   └── ReadoutError          a read failed or timed out
    ├── ControlError              a write was refused
    │   ├── ControlNotSupported   the field is not writable
    │   ├── UnknownParameter      the node has no field of that name
    │   └── InvalidValue          wrong type or out of range (also a ValueError)
    ├── StoreUnavailable          the state file cannot be written now (disk full, I/O error)
    ├── ChartUnavailable          a chart cannot be drawn (no drawing library, the worker failed)
    ├── UploadError               a file cannot be shared through the server (XEP-0363)
    │   ├── UploadUnavailable     the server offers no upload service
    │   └── UploadRefused         the service refused this file (too large, quota, not allowed)
    ├── OmemoError                end-to-end encryption (XEP-0384 OMEMO) failed
    │   ├── OmemoUnavailable      no OMEMO now: the key store cannot be opened, no PEP
    │   ├── EncryptionFailed      a message cannot be encrypted for its recipient (nothing is sent)
    │   └── DeviceDistrusted      a message came from a device an owner distrusted
    └── HubctlError               hubctl, the command-line client, could not do what was asked
        ├── UsageError            bad arguments or account settings (exit status 2)
        ├── CannotConnect         the server cannot be reached, or refused the login (status 3)
        ├── HubRefused            the hub answered with an error (status 1)
        └── NoAnswer              the hub did not answer within the timeout (status 1)

Drivers translate library exceptions (gpiozero, pyserial, bleak) into these at
their edge; nothing above the drivers catches a library exception.  The XMPP
layer maps each class to one XMPP error condition in ``hubd/xmpp/errors.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class HubdError(Exception):
    """Root of every error hubd raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration file, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(HubdError):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class BrokenPlugin(HubdError):
    """An installed package's entry point cannot be loaded: a typo, a missing dependency.

    Bad input, like a configuration error: the message names the distribution
    to fix or uninstall, the entry point, and what went wrong, on one line.
    """

    def __init__(self, package: str, entry_point: str, reason: str) -> None:
        self.package = package  # "hubd-typo 1.0", or "an unknown package"
        self.entry_point = entry_point  # "name = module:attribute"
        self.reason = reason
        super().__init__(f"package {package}, entry point {entry_point}: {reason}")


class XmppAuthError(HubdError):
    """The XMPP server refused the account's credentials."""


class BadRequest(HubdError):
    """A request is malformed: a wrong element, a missing attribute, a value that does not parse."""


class NodeNotFound(HubdError):
    """No node with that id (or the caller may not learn that it exists)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"no such node: {node_id}")


class AccessDenied(HubdError):
    """The caller's role does not allow this operation."""


class DriverError(HubdError):
    """A driver could not do what was asked."""


class DriverUnavailable(DriverError):
    """The hardware is absent, unplugged, or not answering."""


class ReadoutError(DriverError):
    """A read failed or timed out."""


class ControlError(HubdError):
    """A write was refused before or while it was carried out."""

    def __init__(
        self, message: str, *, field: str | None = None, node_id: str | None = None
    ) -> None:
        self.field = field
        self.node_id = node_id  # the node the write was for, when the refusal knows it
        super().__init__(message)


class ControlNotSupported(ControlError):
    """The field exists but cannot be written."""


class UnknownParameter(ControlError):
    """The node has no field of that name."""


class InvalidValue(ControlError, ValueError):
    """The value has the wrong type or lies outside the field's range."""


class StoreUnavailable(HubdError):
    """The state file cannot be written or read now (disk full, read-only, I/O error, damaged).

    The store logs the problem once; callers keep serving live values and retry later.
    """


class ChartUnavailable(HubdError):
    """A chart cannot be drawn: the drawing library is missing, or its worker failed."""


class UploadError(HubdError):
    """A file cannot be shared through the server's HTTP File Upload service (XEP-0363)."""


class UploadUnavailable(UploadError):
    """The server offers no upload service (or the one configured does not answer)."""


class UploadRefused(UploadError):
    """The upload service refused this file: too large, over quota, not allowed."""


class PubSubRefused(HubdError):
    """A pubsub service refused a request of the hub's (publish, create, configure, ...).

    ``condition`` is the XMPP condition (``not-allowed``, ``conflict``, ...),
    ``detail`` the pubsub-specific one (``precondition-not-met``), if any.
    """

    def __init__(self, condition: str, detail: str | None = None, text: str = "") -> None:
        reason = condition + (f" ({detail})" if detail else "")
        super().__init__(reason + (f": {text}" if text else ""))
        self.condition = condition
        self.detail = detail


class OmemoError(HubdError):
    """End-to-end encryption (XEP-0384 OMEMO) failed."""


class OmemoUnavailable(OmemoError):
    """OMEMO cannot be used now: its key store cannot be opened, or the server offers no PEP."""


class EncryptionFailed(OmemoError):
    """A message cannot be encrypted for its recipient (no trusted device, keys not found).

    Nothing is sent in the clear instead.
    """


class DeviceDistrusted(OmemoError):
    """An encrypted message came from a device an owner distrusted (it is not decrypted)."""


class HubctlError(HubdError):
    """hubctl (the command-line client) could not do what was asked; ``exit_status`` says how."""

    exit_status = 1


class UsageError(HubctlError):
    """hubctl was called wrongly: an argument, an option or an account setting is bad."""

    exit_status = 2


class CannotConnect(HubctlError):
    """hubctl cannot reach the XMPP server, trust its certificate, or log in."""

    exit_status = 3


class HubRefused(HubctlError):
    """The hub answered with an error (forbidden, not found, bad value, a node that failed).

    ``condition`` is the XMPP error condition (``forbidden``) or the XEP-0326
    result code (``NotFound``); the message is the hub's reason.
    """

    def __init__(self, condition: str, text: str = "") -> None:
        super().__init__(f"{condition}: {text}" if text else condition)
        self.condition = condition
        self.text = text


class NoAnswer(HubctlError):
    """The hub did not answer within the timeout (it is offline, busy, or ignores the request)."""
