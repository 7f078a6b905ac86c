"""Logging: journald-friendly under systemd, timestamps in a terminal, never a secret."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from hubd.service.logs import setup_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging replaces the root handlers: put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in ("slixmpp", "hubd")}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)


def test_under_systemd_lines_carry_priorities_and_no_timestamp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    out = io.StringIO()
    setup_logging("debug", stream=out)
    log = logging.getLogger("hubd.test")
    log.debug("stanza %s", "x")
    log.info("connected")
    log.warning("node %s is offline", "porch")
    log.error("cannot log in")
    log.critical("gone")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("driver failed")
    lines = out.getvalue().splitlines()
    assert lines[:5] == [
        "<7>hubd.test: stanza x",
        "<6>hubd.test: connected",
        "<4>hubd.test: node porch is offline",
        "<3>hubd.test: cannot log in",
        "<2>hubd.test: gone",
    ]
    # A traceback stays in the journal as lines of the same priority.
    assert lines[5] == "<3>hubd.test: driver failed"
    assert all(line.startswith("<3>") for line in lines[5:])
    assert any("RuntimeError: boom" in line for line in lines[5:])
    assert not any(re.search(r"\d\d:\d\d:\d\d", line) for line in lines)


def test_in_a_terminal_lines_carry_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    setup_logging("info", stream=out)
    logging.getLogger("hubd.test").info("connected")
    logging.getLogger("hubd.test").debug("not shown at info")
    (line,) = out.getvalue().splitlines()
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    hubd\.test: connected$", line)


def test_sasl_exchanges_never_reach_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:1")
    out = io.StringIO()
    setup_logging("debug", stream=out)
    logging.getLogger("slixmpp.xmlstream").debug(
        "SEND: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>c2VjcmV0</auth>"
    )
    logging.getLogger("hubd.test").debug("SEND: <presence/>")
    assert out.getvalue() == "<7>hubd.test: SEND: <presence/>\n"


def test_slixmpp_is_quiet_unless_debugging() -> None:
    out = io.StringIO()
    setup_logging("info", stream=out)
    logging.getLogger("slixmpp.xmlstream").warning("duplicate of hubd's own line")
    assert out.getvalue() == ""
