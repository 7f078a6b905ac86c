"""The federation rig's generated configs, checked without starting a server (openssl only)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hubd.testing import prosody_s2s
from hubd.testing.federation import AWAY, HOME, Federation
from hubd.testing.prosody import ProsodyError


def test_each_server_routes_to_the_others_s2s_port(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    federation.register(federation.home, "alice", "alicepass")
    federation.home.prepare()
    federation.away.prepare()

    config = federation.home.config_file.read_text()
    assert f"s2s_ports = {{ {federation.home.s2s_port} }}" in config
    assert f'hubd_s2s_routes = {{ ["{AWAY}"] = {federation.away.s2s_port} }}' in config
    assert "s2s_secure_auth = true" in config
    assert 'modules_disabled = { "s2s" }' not in config
    assert (federation.home.module_dir / "mod_hubd_s2s_routes.lua").read_text() == (
        prosody_s2s.ROUTES_MODULE
    )
    yaml = federation.away.config_file.read_text()
    assert (
        f'port: {federation.away.s2s_port}\n    ip: "127.0.0.1"\n    module: ejabberd_s2s_in'
        in (yaml)
    )
    assert "s2s_use_starttls: required" in yaml
    assert "s2s_access: none" not in yaml
    assert federation.away._dns_setup() == (
        f'inet_db:add_rr("_xmpp-server._tcp.{HOME}", in, srv, 86400, '
        f'{{0, 0, {federation.home.s2s_port}, "127.0.0.1"}}), '
    )


def test_both_certificates_come_from_one_ca_for_servers_and_clients(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    federation.register(federation.home, "alice", "alicepass")
    federation.away.prepare()
    for cert in (federation.home.cert_file, federation.away.cert_dir / "server.crt"):
        checked = subprocess.run(
            ["openssl", "verify", "-purpose", "sslclient", "-CAfile", str(federation.ca_file),
             str(cert)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout + checked.stderr
        text = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "extendedKeyUsage"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "TLS Web Server Authentication, TLS Web Client Authentication" in text


def test_a_changed_base_config_is_said_not_silently_ignored() -> None:
    with pytest.raises(ProsodyError, match="not exactly one 's2s_ports"):
        prosody_s2s._replace_once("s2s_ports = { 5269 }", "s2s_ports = { }", "x")


def test_a_route_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    federation.home.routes = {'evil"] = 1, ["x': 5}
    with pytest.raises(ProsodyError, match="not allowed in a Prosody config"):
        federation.register(federation.home, "alice", "alicepass")
