"""``remotes:``: other hubs as data sources; every bad entry named by file, line and key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hubd.core.access import AccessPolicy, Role
from hubd.core.config import Config, load_config
from hubd.errors import ConfigError

BASE = """
xmpp:
  jid: hub@example.org/hubd
  password_file: pw
access:
  owners: [alice@example.org]
gpio:
  pin_factory: mock
devices:
  - id: porch-light
    driver: gpio.output
    pin: 17
"""


def load(tmp_path: Path, remotes: str) -> Config:
    (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(BASE).lstrip() + textwrap.dedent(remotes))
    return load_config(path, environ={})


def problems(tmp_path: Path, remotes: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, remotes)
    prefix = f"{tmp_path / 'config.yaml'}:"
    return [str(p).removeprefix(prefix) for p in info.value.problems]


def test_remotes_load_with_defaults(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        remotes:
          - id: garage
            jid: Garage-Hub@Example.org/hubd
          - id: greenhouse
            jid: green@example.net/pi
            timeout: 3
        """,
    )
    assert [(r.id, r.jid, r.timeout) for r in config.remotes] == [
        ("garage", "garage-hub@example.org/hubd", 10.0),
        ("greenhouse", "green@example.net/pi", 3.0),
    ]
    assert config.remotes[0].bare == "garage-hub@example.org"
    assert load(tmp_path, "").remotes == ()


def test_bad_remote_fields(tmp_path: Path) -> None:
    text = "\n".join(
        problems(
            tmp_path,
            """
            remotes:
              - id: Garage
                jid: garage@example.org
              - id: shed
                jidd: shed@example.org/hubd
            """,
        )
    )
    assert "remotes[0].id: String should match pattern" in text
    assert "remotes[0].jid: must be the remote hub's full JID" in text
    assert "remotes[1].jidd: unknown key" in text


def test_clashing_ids_and_own_account_are_refused(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        remotes:
          - id: garage
            jid: garage@example.org/hubd
          - id: garage
            jid: shed@example.org/hubd
          - id: porch-light
            jid: porch@example.org/hubd
          - id: gpio
            jid: gpio@example.org/hubd
          - id: me
            jid: HUB@example.org/other
          - id: again
            jid: garage@example.org/hubd
        """,
    )
    assert found == [
        "16: remotes[1].id: 'garage' is already remotes[0]'s id",
        "18: remotes[2].id: 'porch-light' is a device id: a remote needs its own",
        "20: remotes[3].id: 'gpio' is one of this hub's own data sources",
        "23: remotes[4].jid: this is the hub's own account, not another hub",
        "25: remotes[5].jid: the same hub as remotes[0]",
    ]


def test_root_source_is_not_a_remote_id(tmp_path: Path) -> None:
    # MeteringTopology fails the id pattern already: sources are lower case.
    text = "\n".join(problems(tmp_path, "remotes:\n  - {id: MeteringTopology, jid: a@b.org/c}\n"))
    assert "remotes[0].id" in text


def test_a_changed_remote_needs_a_restart(tmp_path: Path) -> None:
    from hubd.service.reload import needs_restart

    old = load(tmp_path, "")
    new = load(tmp_path, "remotes:\n  - {id: garage, jid: garage@example.org/hubd}\n")
    assert needs_restart(old, new) == ["remotes"]
    assert needs_restart(new, new) == []


def test_a_remotes_own_access_grants_each_of_its_nodes(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        remotes:
          - id: garage
            jid: garage-hub@example.org/hubd
            access: {controllers: [Carol@example.org], readers: ["*@guests.example.org"]}
        """,
    )
    policy = AccessPolicy.from_config(config)
    assert policy.allows("carol@example.org/phone", Role.CONTROLLER, "garage/light")
    assert policy.allows("dan@guests.example.org", Role.READER, "garage/door")
    assert not policy.allows("dan@guests.example.org", Role.CONTROLLER, "garage/door")
    # The grant holds on the remote's nodes only: not here, not at another remote.
    assert not policy.allows("carol@example.org", Role.READER, "porch-light")
    assert not policy.allows("carol@example.org", Role.READER, "shed/light")
    assert not policy.allows("carol@example.org", Role.READER)
    assert policy.allows("alice@example.org", Role.OWNER, "garage/light")  # hub-wide


def test_a_bad_remote_access_entry_is_named(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        remotes:
          - id: garage
            jid: garage-hub@example.org/hubd
            access: {readers: [not a jid]}
        """,
    )
    assert len(found) == 1
    assert "remotes[0].access.readers" in found[0]
