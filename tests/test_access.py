"""Roles from the access lists and the devices' own grants; the entry check."""

from __future__ import annotations

import logging
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest

from hubd.core.access import AccessPolicy, Provisioned, Role
from hubd.core.access_lists import DeviceAccess
from hubd.core.config import load_config
from hubd.core.limits import LimitSettings, PolicyViolation, RateLimited
from hubd.errors import AccessDenied, ConfigError
from hubd.service.reload import access_changed, diff_devices


def test_strongest_role_wins_and_resources_are_ignored() -> None:
    policy = AccessPolicy(
        owners=["alice@example.org"],
        controllers=["*@family.example"],
        readers=["alice@example.org", "bob@example.org"],
    )
    assert policy.role_of("alice@example.org/phone") is Role.OWNER
    assert policy.role_of("Bob@Example.org") is Role.READER
    assert policy.role_of("kid@family.example/tablet") is Role.CONTROLLER
    assert policy.role_of("mallory@evil.example") is Role.STRANGER


def test_servers_and_components_are_never_principals() -> None:
    policy = AccessPolicy(controllers=["*@example.org"])
    assert policy.role_of("example.org") is Role.STRANGER
    assert not policy.allows("example.org", Role.READER)
    assert policy.allows("x@example.org", Role.CONTROLLER)
    assert not policy.allows("x@example.org", Role.OWNER)


# --- per-device grants ---------------------------------------------------------------


def _policy() -> AccessPolicy:
    return AccessPolicy(
        owners=["alice@example.org"],
        controllers=["carol@example.org"],
        readers=["bob@example.org"],
        devices={
            "porch-light": DeviceAccess(controllers=("bob@example.org", "*@guests.example")),
            "garage": DeviceAccess(readers=("neighbour@example.net",)),
            "attic": DeviceAccess(owners=("carol@example.org",)),
        },
    )


def test_device_grants_add_to_the_hub_wide_role_on_that_device_only() -> None:
    policy = _policy()
    assert policy.role_for("bob@example.org/phone", "porch-light") is Role.CONTROLLER
    assert policy.role_for("bob@example.org", "front-door") is Role.READER
    assert policy.role_for("guest@guests.example", "porch-light") is Role.CONTROLLER
    assert policy.role_for("guest@guests.example", "front-door") is Role.STRANGER
    assert policy.role_for("carol@example.org", "attic") is Role.OWNER
    # A device grant never lowers a hub-wide role.
    assert policy.role_for("alice@example.org", "garage") is Role.OWNER
    assert policy.allows("neighbour@example.net", Role.READER, "garage")
    assert not policy.allows("neighbour@example.net", Role.READER)
    assert not policy.allows("neighbour@example.net", Role.CONTROLLER, "garage")


def test_best_role_and_visible_nodes() -> None:
    policy = _policy()
    nodes = {"porch-light": 1, "front-door": 2, "garage": 3, "attic": 4}
    assert policy.best_role("neighbour@example.net") is Role.READER
    assert policy.best_role("guest@guests.example") is Role.CONTROLLER
    assert policy.best_role("mallory@evil.example") is Role.STRANGER
    assert policy.visible("neighbour@example.net", nodes) == [3]
    assert policy.visible("guest@guests.example", nodes) == [1]
    assert policy.visible("bob@example.org", nodes) == [1, 2, 3, 4]
    assert policy.visible("bob@example.org", nodes, Role.CONTROLLER) == [1]
    assert policy.visible("mallory@evil.example", nodes) == []
    assert policy.visible("carol@example.org", nodes, Role.OWNER) == [4]
    assert policy.allows_any("neighbour@example.net", Role.READER)
    assert not policy.allows_any("neighbour@example.net", Role.CONTROLLER)
    assert not policy.allows_any("example.org", Role.READER)


def test_update_replaces_the_device_grants() -> None:
    policy = _policy()
    policy.update(owners=["alice@example.org"])
    assert policy.role_for("bob@example.org", "porch-light") is Role.STRANGER
    assert policy.best_role("neighbour@example.net") is Role.STRANGER


def test_a_provisioning_answer_without_lists_grants_hub_wide() -> None:
    policy = AccessPolicy(owners=["alice@example.org"])
    policy.grant_provisioned("dave@example.org", Provisioned(reads=True, controls=False))
    assert policy.role_of("dave@example.org/phone") is Role.READER
    assert policy.role_for("dave@example.org", "any-device") is Role.READER
    assert policy.fields_for("dave@example.org", "any-device", Role.READER) is None
    assert not policy.allows("dave@example.org", Role.CONTROLLER, "any-device")


def test_a_narrowed_provisioning_answer_holds_on_its_nodes_and_fields_only() -> None:
    policy = AccessPolicy(readers=["bob@example.org"])
    answer = Provisioned(
        reads=True,
        controls=True,
        read_nodes=frozenset({"meter"}),
        read_fields=frozenset({"power"}),
        control_nodes=frozenset({"gate"}),
        parameters=frozenset({"state"}),
    )
    policy.grant_provisioned("Dave@Example.org", answer)
    nodes = {"meter": "m", "gate": "g", "door": "d"}
    assert policy.role_of("dave@example.org") is Role.STRANGER, "nothing hub-wide"
    assert policy.best_role("dave@example.org") is Role.CONTROLLER
    assert policy.visible("dave@example.org", nodes) == ["m", "g"]
    assert policy.visible("dave@example.org", nodes, Role.CONTROLLER) == ["g"]
    assert policy.fields_for("dave@example.org", "meter", Role.READER) == {"power"}
    # A device it may only control shows the parameters it may set.
    assert policy.fields_for("dave@example.org", "gate", Role.READER) == {"state"}
    assert policy.fields_for("dave@example.org", "gate", Role.CONTROLLER) == {"state"}
    # The lists are never narrowed by a provisioning answer.
    assert policy.fields_for("bob@example.org", "meter", Role.READER) is None
    policy.clear_provisioned()
    assert policy.best_role("dave@example.org") is Role.STRANGER


def test_a_provisioning_answer_narrowed_to_nothing_grants_nothing() -> None:
    policy = AccessPolicy()
    policy.grant_provisioned(
        "dave@example.org", Provisioned(reads=True, controls=False, read_nodes=frozenset())
    )
    assert policy.best_role("dave@example.org") is Role.STRANGER
    with pytest.raises(AccessDenied):
        policy.admit("dave@example.org", Role.READER)


def test_device_access_entries_are_validated() -> None:
    with pytest.raises(ValueError, match="bare JID"):
        DeviceAccess(readers=("bob@example.org/phone",))
    assert DeviceAccess(readers=("Bob@Example.org",)).readers == ("bob@example.org",)


# --- the entry check -------------------------------------------------------------------


def test_admit_checks_rate_then_role_then_size() -> None:
    limits = LimitSettings(burst=2, requests_per_minute=1, max_request_elements=8)
    policy = AccessPolicy(readers=["bob@example.org"], limits=limits)
    small = Element("req")
    big = Element("req")
    for _ in range(20):
        SubElement(big, "node")
    policy.admit("bob@example.org/a", Role.READER, small)
    with pytest.raises(PolicyViolation):
        policy.admit("bob@example.org/b", Role.READER, big)
    # The bucket is shared by every resource of one account, and now empty.
    with pytest.raises(RateLimited):
        policy.admit("bob@example.org/c", Role.READER, small)
    with pytest.raises(AccessDenied):
        policy.admit("mallory@evil.example", Role.READER, big)
    with pytest.raises(AccessDenied):
        policy.admit("carol@example.org", Role.CONTROLLER)


# --- from the configuration file ---------------------------------------------------------

CONFIG = """\
xmpp:
  jid: hub@example.org
  {password}
access:
  owners: [alice@example.org]
  readers: [bob@example.org]
limits:
  requests_per_minute: 60
  max_subscriptions: 5
gpio:
  pin_factory: mock
devices:
  - id: porch-light
    driver: gpio.output
    pin: 17
    access:
      controllers: [bob@example.org]
  - id: garage
    driver: gpio.input
    pin: 27
    access:
      readers: [{garage_reader}]
"""


def _write(tmp_path: Path, password: str, garage_reader: str = "neighbour@example.net") -> Path:
    (tmp_path / "pw").write_text("from-file\n")
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(password=password, garage_reader=garage_reader))
    return path


def test_policy_from_config_has_lists_device_grants_and_limits(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "password_file: pw"), environ={})
    policy = AccessPolicy.from_config(config)
    assert policy.role_for("bob@example.org", "porch-light") is Role.CONTROLLER
    assert policy.role_for("bob@example.org", "garage") is Role.READER
    assert policy.visible("neighbour@example.net", {"porch-light": 1, "garage": 2}) == [2]
    assert policy.limits.max_subscriptions == 5
    assert policy.limiter.settings.requests_per_minute == 60


def test_a_bad_device_grant_is_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "password_file: pw", garage_reader="not-a-jid")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"{path}:22: devices[1] (garage): access.readers")
    assert "bare JID" in problem


def test_a_device_grant_change_is_applied_live_not_a_restart(tmp_path: Path) -> None:
    old = load_config(_write(tmp_path, "password_file: pw"), environ={})
    new = load_config(_write(tmp_path, "password_file: pw", "kid@example.org"), environ={})
    assert diff_devices(old, new).empty
    assert access_changed(old, new)


def test_password_in_the_file_works_with_a_warning_and_never_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hubd.core.config"):
        config = load_config(_write(tmp_path, "password: hunter2-in-yaml"), environ={})
    assert config.password.get_secret_value() == "hunter2-in-yaml"
    assert "prefer password_file" in caplog.text
    assert "hunter2" not in caplog.text
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config.xmpp)


def test_only_one_password_source(tmp_path: Path) -> None:
    path = _write(tmp_path, "password_file: pw\n  password: also")
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    [problem] = [str(p) for p in info.value.problems]
    assert "xmpp.password: set only one of password_file or password" in problem
    assert "also" not in problem
