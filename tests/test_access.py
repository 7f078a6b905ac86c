"""Roles from the access lists."""

from __future__ import annotations

from hubd.access import AccessPolicy, Role


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
