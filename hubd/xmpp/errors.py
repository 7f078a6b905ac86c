"""The one table from hubd's exceptions to XMPP error conditions (RFC 6120 §8.3).

Every interface that answers a stanza (XEP-0323/0325/0326, ad-hoc commands)
maps errors here, so the same failure always reads the same on the wire.
The most specific class wins (the table is searched along the MRO).
"""

from __future__ import annotations

from dataclasses import dataclass

from hubd.core.limits import PolicyViolation, RateLimited
from hubd.errors import (
    AccessDenied,
    BadRequest,
    ControlError,
    ControlNotSupported,
    DriverUnavailable,
    HubdError,
    InvalidValue,
    NodeNotFound,
    ReadoutError,
    UnknownParameter,
)


@dataclass(frozen=True, slots=True)
class ErrorCondition:
    """An XMPP error: its type (cancel, modify, wait, ...), condition and text."""

    type: str
    condition: str
    text: str


_TABLE: dict[type[BaseException], tuple[str, str]] = {
    AccessDenied: ("cancel", "forbidden"),
    # Abuse limits (hubd/core/limits.py): a rate passes with time, a size or count does not.
    RateLimited: ("wait", "resource-constraint"),
    # RFC 6120 has policy-violation for this, but slixmpp-based clients (a main
    # interop target) cannot parse it and would wait for a timeout instead.
    PolicyViolation: ("modify", "not-acceptable"),
    # Strangers must not learn whether a node exists: callers check access
    # first and answer them `forbidden` before any lookup.
    NodeNotFound: ("cancel", "item-not-found"),
    BadRequest: ("modify", "bad-request"),
    InvalidValue: ("modify", "bad-request"),
    UnknownParameter: ("cancel", "item-not-found"),
    ControlNotSupported: ("cancel", "feature-not-implemented"),
    ControlError: ("modify", "bad-request"),
    # The hardware is away for now; retrying later may work, hence "wait".
    DriverUnavailable: ("wait", "recipient-unavailable"),
    ReadoutError: ("wait", "internal-server-error"),
    HubdError: ("cancel", "internal-server-error"),
}


def condition_for(error: BaseException) -> ErrorCondition:
    """Return the XMPP error for ``error``; unknown errors never leak their text."""
    for cls in type(error).__mro__:
        entry = _TABLE.get(cls)
        if entry is not None:
            return ErrorCondition(entry[0], entry[1], str(error))
    return ErrorCondition("cancel", "internal-server-error", "internal error")
