"""``pubsub:``: the keys, bad input, and which devices a node's audience may be given.

A device's own ``access:`` grant widens who may read that device; a node has
one audience for every item, so a device goes to a node only when everyone
the node reaches may read it (pubsub-profiles.md, "Where, and who may read").
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hubd.core.access import AccessPolicy
from hubd.core.audience import audience, covered, members, publishable
from hubd.core.config import Config, load_config
from hubd.errors import ConfigError

BASE = """
xmpp:
  jid: hub@example.org
  password_file: pw
access:
  owners: [alice@example.org]
  readers: [bob@example.org, "*@family.example"]
gpio:
  pin_factory: mock
devices:
  - id: porch-light
    driver: gpio.output
    pin: 17
  - id: garage
    driver: gpio.input
    pin: 27
    access:
      readers: [neighbour@example.org]
  - id: shed
    driver: gpio.input
    pin: 22
    access:
      readers: [alice@example.org, bob@example.org, "*@family.example", neighbour@example.org]
"""


def load(tmp_path: Path, pubsub: str, access_extra: str = "") -> Config:
    (tmp_path / "pw").write_text("secret\n")
    text = textwrap.dedent(BASE).lstrip() + textwrap.dedent(pubsub)
    if access_extra:
        text = text.replace("gpio:", f"  {access_extra}\ngpio:", 1)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(path, environ={})


def problems(tmp_path: Path, pubsub: str, access_extra: str = "") -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, pubsub, access_extra)
    return [str(p) for p in err.value.problems]


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "pubsub: {}\n")
    assert config.pubsub is not None
    assert config.pubsub.service == "pep"
    assert config.pubsub.node == "urn:xmpp:iot:sensordata"
    assert config.pubsub.devices is None
    assert config.pubsub.profiles == ("iot",)
    assert load(tmp_path, "").pubsub is None


def test_bad_input_is_located(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        pubsub:
          service: not a jid
          profiles: [iot, mqtt]
          devices: [porch-lite]
          nodes: x
        """,
    )
    text = "\n".join(found)
    assert 'pubsub.service: must be "pep" or a pubsub service JID' in text
    assert "pubsub.profiles[1]" in text
    assert "pubsub.nodes: unknown key; did you mean 'node'?" in text
    assert problems(tmp_path, "pubsub:\n  devices: [porch-lite]\n") == [
        f"{tmp_path / 'config.yaml'}:24: pubsub.devices[0]: no device 'porch-lite'; did you mean "
        "'porch-light'? (allowed: garage, porch-light, shed)"
    ]
    assert "each profile at most once" in "\n".join(
        problems(tmp_path, "pubsub:\n  profiles: [iot, iot]\n")
    )
    assert "pubsub.profiles: Tuple should have at least 1 item" in "\n".join(
        problems(tmp_path, "pubsub:\n  profiles: []\n")
    )


def test_pep_refuses_an_audience_beyond_the_lists(tmp_path: Path) -> None:
    # ask_owners / provisioning approve presence, and so PEP items, for people the lists never name.
    (found,) = problems(tmp_path, "pubsub: {service: pep}\n", "ask_owners: true")
    assert "pubsub.service: pep shares the items with everyone who sees the hub online" in found
    assert load(tmp_path, "pubsub: {service: pubsub.example.org}\n", "ask_owners: true").pubsub
    # So does a Thing registry (discovery:), which the hub lets see its presence.
    registry = "discovery: {registry: registry.example.org}\n"
    (found,) = problems(tmp_path, "pubsub: {service: pep}\n" + registry)
    assert "and discovery lets others beyond the lists see it: use a service JID" in found
    assert load(tmp_path, "pubsub: {service: pubsub.example.org}\n" + registry).pubsub


def test_service_members_are_the_lists_and_every_device_is_published(tmp_path: Path) -> None:
    config = load(tmp_path, "pubsub: {service: pubsub.example.org}\n")
    policy = AccessPolicy.from_config(config)
    assert members(config) == ("alice@example.org", "bob@example.org")
    # The hub-wide lists read every device, the garage's neighbour is no member.
    assert publishable(config, policy) == ("porch-light", "garage", "shed")


def test_pep_audience_includes_device_grants_and_narrows_the_devices(tmp_path: Path) -> None:
    config = load(tmp_path, "pubsub: {service: pep}\n")
    policy = AccessPolicy.from_config(config)
    assert "neighbour@example.org" in audience(config)
    # The neighbour sees the hub's presence (for the garage) and so every PEP item:
    # only a device that everyone in that audience may read goes there (not the porch light).
    assert publishable(config, policy) == ("garage", "shed")


def test_a_domain_entry_needs_a_domain_grant(tmp_path: Path) -> None:
    policy = AccessPolicy.from_config(load(tmp_path, "pubsub: {service: pep}\n"))
    assert covered(policy, ["*@family.example"], "porch-light")
    # One JID of a domain granted the garage does not stand for the whole domain.
    assert not covered(policy, ["*@example.org"], "garage")
    assert covered(policy, ["neighbour@example.org"], "garage")
    assert not covered(policy, ["neighbour@example.org"], "porch-light")


def test_a_reload_of_pubsub_needs_a_restart(tmp_path: Path) -> None:
    from hubd.service.reload import needs_restart

    old = load(tmp_path, "pubsub: {service: pep}\n")
    new = load(tmp_path, "pubsub: {service: pubsub.example.org}\n")
    assert needs_restart(old, new) == ["pubsub"]
