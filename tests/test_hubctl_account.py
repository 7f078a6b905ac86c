"""hubctl's account (flags, environment, ~/.config/hubctl/config.yaml) and command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubd.errors import UsageError
from hubd.service.hubctl import hub_jid, parse
from hubd.service.hubctl_account import (
    AccountFlags,
    config_path,
    load_config_file,
    read_password_file,
    resolve_account,
)


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("not read here\n")
    return path


def write_config(tmp_path: Path, text: str) -> Path:
    path = config_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_config_path_is_under_the_home() -> None:
    assert config_path(Path("/home/x")) == Path("/home/x/.config/hubctl/config.yaml")


def test_everything_from_the_config_file(tmp_path: Path, ca: Path) -> None:
    config = write_config(
        tmp_path,
        f"jid: me@example.org\npassword_file: pw\nserver: xmpp.example.org\nport: 5223\n"
        f"ca_file: {ca}\n",
    )
    (config.parent / "pw").write_text("s3cret\nignored second line\n")
    account = resolve_account(AccountFlags(), {}, config_file=config)
    assert (account.jid, account.password) == ("me@example.org", "s3cret")
    assert (account.server, account.port, account.ca_file) == ("xmpp.example.org", 5223, ca)


def test_environment_over_file_and_flags_over_environment(tmp_path: Path, ca: Path) -> None:
    config = write_config(tmp_path, "jid: file@example.org\nserver: file.example.org\n")
    env = {
        "HUBCTL_JID": "env@example.org",
        "HUBCTL_PASSWORD": "envpass",
        "HUBCTL_PORT": "5333",
        "HUBCTL_CA_FILE": str(ca),
    }
    account = resolve_account(AccountFlags(), env, config_file=config)
    assert (account.jid, account.password, account.server, account.port) == (
        "env@example.org",
        "envpass",
        "file.example.org",
        5333,
    )
    pw = tmp_path / "flagpw"
    pw.write_text("flagpass")
    flags = AccountFlags(jid="flag@example.org", password_file=pw, port=5444)
    account = resolve_account(flags, env, config_file=config)
    assert (account.jid, account.password, account.port) == ("flag@example.org", "flagpass", 5444)


def test_no_account_and_no_password_are_usage_errors(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    with pytest.raises(UsageError, match="no account"):
        resolve_account(AccountFlags(), {}, config_file=missing)
    with pytest.raises(UsageError, match=r"no password for me@example\.org"):
        resolve_account(AccountFlags(jid="me@example.org"), {}, config_file=missing)


def test_a_terminal_is_asked_for_the_password(tmp_path: Path) -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    account = resolve_account(
        AccountFlags(jid="me@example.org"), {}, config_file=tmp_path / "x", prompt=prompt
    )
    assert account.password == "typed"
    assert asked == ["Password for me@example.org: "]

    def interrupted(_text: str) -> str:
        raise EOFError

    with pytest.raises(UsageError, match="no password"):
        resolve_account(
            AccountFlags(jid="me@example.org"), {}, config_file=tmp_path / "x", prompt=interrupted
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jid: a@b\npassword: hunter2\n", "a password does not go in this file"),
        ("jid: a@b\nresource: x\n", "unknown key resource"),
        ("- jid\n", "not a list or text"),
        ("jid: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(UsageError, match=message) as caught:
        load_config_file(config)
    assert "hunter2" not in str(caught.value)


def test_an_empty_config_file_is_no_settings(tmp_path: Path) -> None:
    assert load_config_file(write_config(tmp_path, "")) == {}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUBCTL_PORT": "http"}, "port: not a number"),
        ({"HUBCTL_PORT": "70000"}, "not between 1 and 65535"),
        ({"HUBCTL_CA_FILE": "/no/such/ca.pem"}, "ca_file: no such file"),
    ],
)
def test_bad_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    env = {"HUBCTL_JID": "a@b", "HUBCTL_PASSWORD": "p", **env}
    with pytest.raises(UsageError, match=message):
        resolve_account(AccountFlags(), env, config_file=tmp_path / "none")


def test_password_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="No such file"):
        read_password_file(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="is empty"):
        read_password_file(empty)


@pytest.mark.parametrize(
    "argv",
    [
        ["--password", "hunter2", "read", "hub@example.org"],
        ["read", "hub@example.org", "--password=hunter2"],
        ["-p", "hunter2", "list", "hub@example.org"],
    ],
)
def test_a_password_on_the_command_line_is_refused_without_echoing_it(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="never go on the command line") as caught:
        parse(argv)
    assert "hunter2" not in str(caught.value)


def test_options_go_before_or_after_the_command() -> None:
    before = parse(["--json", "--timeout", "2", "read", "hub@example.org", "weather"])
    after = parse(["read", "hub@example.org", "weather", "--json", "--timeout", "2"])
    for args in (before, after):
        assert (args.json, args.timeout, args.device, args.fields) == (True, 2.0, "weather", [])
    plain = parse(["list", "hub@example.org"])
    assert (plain.json, plain.timeout) == (False, 10.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no command"),
        (["frobnicate", "hub@example.org"], "invalid choice"),
        (["read"], "HUB"),
        (["--timeout", "soon", "read", "hub@example.org"], "not a number"),
        (["--timeout", "0", "read", "hub@example.org"], "more than 0"),
        (["history", "hub@example.org", "weather", "--since", "5x"], "not a period"),
        (["watch", "hub@example.org", "door", "--changed-by", "1"], "needs a FIELD"),
        (["watch", "hub@example.org", "door", "state", "--changed-by", "-1"], "more than 0"),
        (["watch", "hub@example.org", "door", "--count", "0"], "more than 0"),
        (["set", "hub@example.org", "lamp", "state"], "VALUE"),
        (["read", "hub @example.org"], "not a JID"),
        (["--json-output", "read", "hub@example.org"], "unrecognized"),  # no abbreviations
    ],
)
def test_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(argv)


def test_a_bare_hub_jid_gets_hubds_resource() -> None:
    assert hub_jid("hub@example.org") == "hub@example.org/hubd"
    assert hub_jid("hub@example.org/garage") == "hub@example.org/garage"
    assert hub_jid("concentrator.example.org") == "concentrator.example.org"


def test_every_command_has_a_manual(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("list", "read", "set", "watch", "history", "browse"):
        with pytest.raises(SystemExit) as done:
            parse([command, "--help"])
        assert done.value.code == 0
        text = capsys.readouterr().out
        assert "examples:" in text
        assert "exit status:" in text
        assert f"hubctl {command}" in text
