"""XEP-0347 claim codes, meta tags, the ownership file and the discovery: config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from hubd.core.claim import (
    MetaTag,
    check_tag,
    claim_string,
    iotdisco_uri,
    meta_tags,
    parse_claim_string,
    parse_iotdisco_uri,
)
from hubd.core.ownership import load_ownership, ownership_path, read_ownership, save_ownership
from hubd.errors import BadRequest, ConfigError

EXAMPLE_TAGS = (
    MetaTag("SN", "394872348732948723"),
    MetaTag("MAN", "www.ktc.se"),
    MetaTag("MODEL", "IMC"),
    MetaTag("V", 1.2),
    MetaTag("KEY", "4857402340298342"),
)
# XEP-0347 §3.8, example 'String to encode as a QR-code'.
EXAMPLE_STRING = (
    "IoTDisco;SN:394872348732948723;MAN:www.ktc.se;MODEL:IMC;#V:1.2;KEY:4857402340298342"
)


def test_claim_string_is_the_xeps_example() -> None:
    assert claim_string(EXAMPLE_TAGS) == EXAMPLE_STRING
    assert parse_claim_string(EXAMPLE_STRING) == EXAMPLE_TAGS


def test_semicolons_and_backslashes_are_escaped_both_ways() -> None:
    tags = (MetaTag("NAME", "a;b\\c"), MetaTag("KEY", "k"))
    text = claim_string(tags)
    assert text == "IoTDisco;NAME:a\\;b\\\\c;KEY:k"
    assert parse_claim_string(text) == tags


@pytest.mark.parametrize(
    "text",
    ["", "IoTDisco", "iotdisco;SN:1", "IoTDisco;SN", "IoTDisco;#V:one", "IoTDisco;SN:1\\"],
)
def test_malformed_claim_strings_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_claim_string(text)


def test_iotdisco_uri_names_the_registry() -> None:
    uri = iotdisco_uri(EXAMPLE_TAGS, "registry.example.org")
    assert uri == (
        "iotdisco:SN=394872348732948723;MAN=www.ktc.se;MODEL=IMC;#V=1.2;"
        "KEY=4857402340298342;R=registry.example.org"
    )
    assert parse_iotdisco_uri(uri)["#V"] == "1.2"
    assert parse_iotdisco_uri(iotdisco_uri((MetaTag("NAME", "a;b=c d"),), None)) == {
        "NAME": "a;b=c d"
    }
    with pytest.raises(BadRequest):
        parse_iotdisco_uri("IoTDisco;SN:1")


def test_meta_tags_put_key_last_and_never_twice() -> None:
    tags = meta_tags({"man": "example.org", "V": 1.0}, "secret")
    assert [t.name for t in tags] == ["MAN", "V", "KEY"]
    assert tags[-1].value == "secret"


@pytest.mark.parametrize(
    ("name", "value"),
    [("A:B", "x"), ("#V", 1), ("TWO WORDS", "x"), ("X" * 33, "x"), ("N", "x" * 129), ("N", True)],
)
def test_tags_outside_the_xeps_limits_are_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_tag(name, value)


def test_the_ownership_file_is_private_and_keeps_its_key(tmp_path: Path) -> None:
    first = load_ownership(tmp_path)
    mode = stat.S_IMODE(ownership_path(tmp_path).stat().st_mode)
    assert mode == 0o600
    assert len(first.key) >= 32
    assert load_ownership(tmp_path).key == first.key  # created once
    save_ownership(tmp_path, first.changed(owner="alice@example.org", public=False))
    again = read_ownership(tmp_path)
    assert again is not None
    assert again.owner == "alice@example.org"
    assert again.public is False
    assert stat.S_IMODE(ownership_path(tmp_path).stat().st_mode) == 0o600


def test_an_unreadable_ownership_file_is_ignored(tmp_path: Path) -> None:
    ownership_path(tmp_path).write_text("{not json")
    assert read_ownership(tmp_path) is None
    ownership_path(tmp_path).write_text('{"owner": "x@y"}')
    assert read_ownership(tmp_path) is None


def _config(tmp_path: Path, discovery: str) -> Path:
    (tmp_path / "pw").write_text("pw\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\nstate_dir: state\n" + discovery
    )
    return path


def test_discovery_config_is_validated(tmp_path: Path) -> None:
    from hubd.core.config import load_config

    config = load_config(
        _config(tmp_path, "discovery:\n  registry: auto\n  meta: {MAN: example.org, V: 1.2}\n")
    )
    assert config.discovery is not None
    assert config.discovery.meta == {"MAN": "example.org", "V": 1.2}
    assert load_config(_config(tmp_path, "")).discovery is None
    for bad, message in [
        ("discovery: {registry: 'not a jid'}", "registry"),
        ("discovery: {registry: auto, meta: {KEY: x}}", "KEY"),
        ("discovery: {registry: auto, meta: {'A:B': x}}", "tag name"),
        ("discovery: {registry: auto, regsitry: x}", "unknown key"),
        ("discovery: {meta: {}}", "registry: required"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_config(_config(tmp_path, bad + "\n"))
        assert message in str(caught.value), (bad, str(caught.value))
