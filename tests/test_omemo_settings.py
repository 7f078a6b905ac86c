"""``omemo:`` in the config: on by default exactly when the extra is installed."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import GOOD, problems, write

from hubd.core import omemo_settings
from hubd.core.config import load_config


@pytest.fixture(params=[True, False], ids=["extra", "no-extra"])
def installed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(omemo_settings, "omemo_installed", lambda: request.param)
    return bool(request.param)


def test_absent_means_on_iff_the_extra_is_installed(tmp_path: Path, installed: bool) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert config.omemo.enabled is installed
    assert config.omemo.require is False


def test_enabled_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(omemo_settings, "omemo_installed", lambda: False)
    path = write(tmp_path, GOOD + "omemo:\n  enabled: true\n")
    assert problems(path) == [
        f"{path}:17: omemo.enabled: OMEMO needs the omemo extra: "
        "pip install 'hubd[omemo]' (or enabled: false)"
    ]


def test_require_needs_omemo_on(tmp_path: Path, installed: bool) -> None:
    path = write(tmp_path, GOOD + "omemo:\n  enabled: false\n  require: true\n")
    assert problems(path) == [
        f"{path}:18: omemo.require: require: true needs OMEMO on (enabled: true)"
    ]


def test_off_and_required_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(omemo_settings, "omemo_installed", lambda: True)
    off = load_config(write(tmp_path, GOOD + "omemo:\n  enabled: false\n"), environ={})
    assert off.omemo.enabled is False
    required = load_config(write(tmp_path, GOOD + "omemo:\n  require: true\n"), environ={})
    assert (required.omemo.enabled, required.omemo.require) == (True, True)
