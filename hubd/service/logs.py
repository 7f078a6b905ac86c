"""Logging that reads well in a terminal and in the journal, and never leaks a secret.

Under systemd (``JOURNAL_STREAM`` set) lines carry a ``<N>`` priority prefix
and no timestamp, since journald adds its own.  slixmpp logs whole stanzas at
DEBUG, authentication included: a filter drops every record that carries a
SASL exchange, whatever the level.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
_SECRET_MARKERS = ("urn:ietf:params:xml:ns:xmpp-sasl", "<auth ", "<response ", "<success ")


class SecretFilter(logging.Filter):
    """Drop records that may carry authentication data."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep a record unless its text carries a SASL exchange."""
        try:
            text = record.getMessage()
        except Exception:  # a broken record format is not our secret to judge
            return True
        return not any(marker in text for marker in _SECRET_MARKERS)


class LinkNoiseFilter(logging.Filter):
    """Drop slixmpp's tracebacks for stanzas it could not send on a link that just died.

    hubd logs the lost connection itself, once; the queued stanzas are resent
    by stream management when the session resumes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but a NotConnectedError from slixmpp's send queue."""
        if not record.name.startswith("slixmpp") or record.exc_info is None:
            return True
        error = record.exc_info[1]
        return type(error).__name__ != "NotConnectedError"


class JournalFormatter(logging.Formatter):
    """``<6>hubd.core.hub: message``: journald reads the priority from the prefix."""

    def format(self, record: logging.LogRecord) -> str:
        """Prefix each line with its syslog priority."""
        priority = _PRIORITY.get(record.levelno, 6)
        text = super().format(record)
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())


def setup_logging(level: str = "info", *, stream: object = None) -> None:
    """Configure the root logger once for the daemon."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(SecretFilter())
    handler.addFilter(LinkNoiseFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper(), logging.INFO)
    root.setLevel(numeric)
    # slixmpp's own lines duplicate ours at INFO and below; show them only when debugging.
    logging.getLogger("slixmpp").setLevel(
        logging.DEBUG if numeric <= logging.DEBUG else logging.ERROR
    )
    # "No appropriate login method." says less clearly what hubd.service.app says
    # about a refused login.
    logging.getLogger("slixmpp.features.feature_mechanisms").setLevel(logging.CRITICAL)
