"""The configuration file: every bad input gives file:line and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hubd.core.config import load_config
from hubd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, *, password: bool = True) -> Path:
    if password:
        (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
xmpp:
  jid: hub@example.org
  password_file: pw
access:
  owners: [alice@example.org]
gpio:
  pin_factory: mock
devices:
  - id: porch-light
    driver: gpio.output
    pin: 17
  - id: front-door
    driver: gpio.input
    pin: 27
    pull_up: true
"""


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    return [str(p) for p in info.value.problems]


def test_good_config_loads_with_paths_resolved(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert [d.id for d in config.devices] == ["porch-light", "front-door"]
    assert config.password.get_secret_value() == "secret"
    assert config.xmpp.password_file == tmp_path / "pw"
    assert config.bus.gpio.pin_factory == "mock"
    assert "secret" not in repr(config)


def test_example_config_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "config.example.yaml").read_text()
    (tmp_path / "xmpp.password").write_text("pw\n")
    text = text.replace("/etc/hubd/xmpp.password", str(tmp_path / "xmpp.password"))
    text = text.replace("/etc/hubd/ca.pem", str(tmp_path / "ca.pem"))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    config = load_config(path, environ={})
    assert config.devices, "the example shows at least one device"


def test_unknown_key_names_line_path_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    pull_up: true", "    pullup: true"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:15: devices[1] (front-door): pullup: unknown key")
    assert "did you mean 'pull_up'" in problem


def test_wrong_type_and_range(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("pin: 17", "pin: 40").replace("pin: 27", "pin: x"))
    found = problems(path)
    assert found[0].startswith(f"{path}:11: devices[0] (porch-light): pin: ")
    assert "less than or equal to 27" in found[0]
    assert found[1].startswith(f"{path}:14: devices[1] (front-door): pin: ")


def test_duplicate_ids_and_pin_conflicts(tmp_path: Path) -> None:
    text = GOOD.replace("id: front-door", "id: porch-light").replace("pin: 27", "pin: 17")
    found = problems(write(tmp_path, text))
    assert any(":12: devices[1] (porch-light): id: duplicate device id" in p for p in found)
    text = GOOD.replace("pin: 27", "pin: 17")
    found = problems(write(tmp_path, text))
    assert any(
        "devices[1] (front-door): gpio:17 is already used by device 'porch-light'" in p
        for p in found
    )


def test_missing_password_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, password=False)
    [problem] = problems(path)
    assert (
        problem == f"{path}:3: xmpp.password_file: password file {tmp_path / 'pw'} does not exist"
    )


def test_password_from_env_or_systemd_credential(tmp_path: Path) -> None:
    text = GOOD.replace("  password_file: pw\n", "  password_env: HUB_PW\n")
    path = write(tmp_path, text)
    assert load_config(path, environ={"HUB_PW": "x"}).password.get_secret_value() == "x"
    with pytest.raises(ConfigError, match="HUB_PW is not set"):
        load_config(path, environ={})
    path = write(tmp_path, GOOD.replace("  password_file: pw\n", ""))
    (tmp_path / "creds").mkdir()
    (tmp_path / "creds" / "xmpp-password").write_text("cred\n")
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert config.password.get_secret_value() == "cred"
    assert "no password" in problems(path)[0]


def test_unknown_driver_lists_installed_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("driver: gpio.output", "driver: gpio.relay"))
    [problem] = problems(path)
    assert f"{path}:10: devices[0] (porch-light): driver: unknown driver 'gpio.relay'" in problem
    assert "gpio.output" in problem


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("  owners: [alice@example.org]", "  owners: [alice"))
    [problem] = problems(path)
    assert problem.startswith(f"{path}:")
    assert "YAML syntax error" in problem


def test_duplicate_yaml_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("gpio:\n", "state_dir: /tmp\nstate_dir: /var\ngpio:\n"))
    [problem] = problems(path)
    assert (
        problem == f"{path}:7: state_dir: duplicate key (the first one would be silently replaced)"
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("jid: hub@example.org", "jid: not-a-jid").replace("pin: 17", "pin: -1")
    text = text.replace("owners: [alice@example.org]", "owners: [alice]")
    found = problems(write(tmp_path, text))
    assert len(found) == 3
    assert any("xmpp.jid: must look like user@domain" in p for p in found)
    assert any("access.owners" in p and "'alice'" in p for p in found)


def test_top_level_typo_and_missing_xmpp(tmp_path: Path) -> None:
    path = write(tmp_path, "xmp:\n  jid: a@b\n")
    found = problems(path)
    assert f"{path}:1: xmp: unknown key; did you mean 'xmpp'?" in found[0]
    assert any(p.startswith(f"{path}:1: xmpp: required key is missing") for p in found)


def test_unreadable_or_empty_file(tmp_path: Path) -> None:
    assert "cannot read" in problems(tmp_path / "absent.yaml")[0]
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert "must be a mapping" in problems(empty)[0]
