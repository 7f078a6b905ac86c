"""The exception -> XMPP error condition table."""

from __future__ import annotations

import pytest

from hubd.errors import (
    AccessDenied,
    BadRequest,
    ConfigError,
    ControlError,
    ControlNotSupported,
    DriverUnavailable,
    InvalidValue,
    NodeNotFound,
    ReadoutError,
    UnknownParameter,
)
from hubd.xmpp.errors import condition_for


@pytest.mark.parametrize(
    ("error", "kind", "condition"),
    [
        (AccessDenied("no"), "cancel", "forbidden"),
        (NodeNotFound("x"), "cancel", "item-not-found"),
        (BadRequest("seqnr missing"), "modify", "bad-request"),
        (InvalidValue("too big", field="level"), "modify", "bad-request"),
        (UnknownParameter("no such field", field="colour"), "cancel", "item-not-found"),
        (ControlNotSupported("read-only", field="state"), "cancel", "feature-not-implemented"),
        (ControlError("refused"), "modify", "bad-request"),
        (DriverUnavailable("unplugged"), "wait", "recipient-unavailable"),
        (ReadoutError("timeout"), "wait", "internal-server-error"),
        (ConfigError([]), "cancel", "internal-server-error"),
    ],
)
def test_each_error_maps_to_one_condition(error: Exception, kind: str, condition: str) -> None:
    mapped = condition_for(error)
    assert (mapped.type, mapped.condition) == (kind, condition)
    assert mapped.text == str(error)


def test_a_library_error_never_leaks_its_text() -> None:
    mapped = condition_for(KeyError("/dev/secret-path"))
    assert (mapped.condition, mapped.text) == ("internal-server-error", "internal error")
