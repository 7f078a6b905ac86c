"""What a reload changes: devices compared by id, access live, the rest at the next start."""

from __future__ import annotations

import textwrap
from pathlib import Path

from hubd.core.config import Config, load_config
from hubd.service.reload import access_changed, diff_devices, needs_restart

BASE = """
xmpp:
  jid: hub@example.org
  password_file: pw
access:
  owners: [alice@example.org]
gpio:
  pin_factory: mock
devices:
"""


def load(tmp_path: Path, devices: str, *, base: str = BASE, name: str = "a.yaml") -> Config:
    (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / name
    path.write_text(textwrap.dedent(base).lstrip() + textwrap.dedent(devices))
    return load_config(path, environ={})


LIGHT = """
  - id: porch-light
    driver: gpio.output
    pin: 17
"""
DOOR = """
  - id: front-door
    driver: gpio.input
    pin: 27
"""
GARAGE = """
  - id: garage
    driver: gpio.output
    pin: 22
"""


def test_added_removed_and_changed_by_id(tmp_path: Path) -> None:
    old = load(tmp_path, LIGHT + DOOR)
    new = load(tmp_path, DOOR.replace("27", "26") + GARAGE, name="b.yaml")
    diff = diff_devices(old, new)
    assert [d.id for d in diff.added] == ["garage"]
    assert diff.removed == ("porch-light",)
    assert [d.id for d in diff.changed] == ["front-door"]
    assert diff.summary() == "+1 -1 ~1 devices"
    assert not diff.empty


def test_same_file_changes_nothing(tmp_path: Path) -> None:
    old = load(tmp_path, LIGHT + DOOR)
    new = load(tmp_path, LIGHT + DOOR, name="b.yaml")
    diff = diff_devices(old, new)
    assert diff.empty
    assert diff.summary() == "+0 -0 ~0 devices"
    assert not access_changed(old, new)
    assert needs_restart(old, new) == []


def test_a_name_change_restarts_the_device(tmp_path: Path) -> None:
    old = load(tmp_path, LIGHT)
    new = load(tmp_path, LIGHT + "    name: Porch\n", name="b.yaml")
    assert [d.id for d in diff_devices(old, new).changed] == ["porch-light"]


def test_access_and_restart_only_sections(tmp_path: Path) -> None:
    old = load(tmp_path, LIGHT)
    base = (
        BASE.replace("owners: [alice@example.org]", "owners: [bob@example.org]")
        .replace("jid: hub@example.org", "jid: hub@example.org/attic")
        .replace("pin_factory: mock", "pin_factory: lgpio")
    )
    new = load(tmp_path, LIGHT, base="log_level: debug\nmetrics: {}\n" + base, name="b.yaml")
    assert access_changed(old, new)
    assert needs_restart(old, new) == ["xmpp", "gpio", "log_level", "metrics"]
    assert diff_devices(old, new).empty
