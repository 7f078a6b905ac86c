"""The optional features' modules are imported only when the configuration turns them on.

A hub without ``remotes:``, ``pubsub:``, ``discovery:``, ``access.provisioning``
or ``rooms:`` must not pay their modules' memory (issue 14 §3): each case runs
what ``hubd run`` runs up to the composed services (config loaded, the App and
its XMPP client built by :meth:`App.compose`, nothing connected) in a fresh
interpreter and looks at ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """\
import asyncio, json, sys
from pathlib import Path
from hubd.service.app import App
from hubd.core.config import load_config

async def main() -> None:
    app = App(load_config(Path(sys.argv[1])))
    assert await app.compose() is not None
    await app.events.store.close()

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""

# Each feature and the modules only it needs.
FEATURES = {
    "remotes": (
        "remotes: [{id: garage, jid: garage-hub@example.org/hubd}]\n",
        {
            "hubd.xmpp.remotes",
            "hubd.xmpp.remote_events",
            "hubd.xmpp.remote_people",
            "hubd.xmpp.remote_control",
            "hubd.xmpp.remote_readout",
            "hubd.xmpp.remote_sensordata",
            "hubd.xmpp.concentrator_remote",
            "hubd.people.remote_commands",
        },
    ),
    "pubsub": (
        "pubsub: {service: pep}\n",
        {"hubd.xmpp.pubsub", "hubd.xmpp.pubsub_xml", "hubd.xmpp.pep_audience"},
    ),
    "discovery": (
        "discovery: {registry: registry.example.org}\n",
        {"hubd.xmpp.thing_registry", "hubd.xmpp.discovery_xml", "hubd.core.ownership"},
    ),
    "provisioning": (
        "access: {owners: [me@example.org], provisioning: provisioning.example.org}\n",
        {"hubd.xmpp.provisioning"},
    ),
    "rooms": (
        "rooms: [{jid: house@conference.example.org}]\n",
        {"hubd.xmpp.muc", "slixmpp.plugins.xep_0045"},
    ),
}
# Not configured features: the chart module comes with the first plot, the HTTP
# client with the first chart shared.
PLOT = {"hubd.people.chart", "hubd.people.chart_drawing", "hubd.xmpp.upload", "http.client"}
ALL_LAZY = set().union(*(modules for _, modules in FEATURES.values())) | PLOT


def imported(tmp_path: Path, extra: str) -> set[str]:
    (tmp_path / "pw").write_text("secret\n")
    config = tmp_path / "config.yaml"
    access = "" if extra.startswith("access:") else "access: {owners: [me@example.org]}\n"
    config.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "gpio: {pin_factory: mock}\n"
        "omemo: {enabled: false}\n"
        f"{access}{extra}"
        "devices:\n  - {id: lamp, driver: gpio.output, pin: 4}\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_a_minimal_hub_imports_no_optional_feature(tmp_path: Path) -> None:
    loaded = imported(tmp_path, "")
    assert loaded & ALL_LAZY == set()
    # difflib only words a mistake; zoneinfo's path is set without sysconfig's data.
    assert "difflib" not in loaded
    assert not any(name.startswith("_sysconfigdata") for name in loaded)


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_turning_a_feature_on_imports_it(tmp_path: Path, feature: str) -> None:
    extra, modules = FEATURES[feature]
    loaded = imported(tmp_path, extra)
    # What the feature needs, and no other feature along with it.
    assert loaded & ALL_LAZY == modules


async def test_the_upload_client_is_built_at_the_first_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hubd.xmpp import client, upload

    shared: list[tuple[bytes, str, str]] = []

    class FakeUpload:
        def __init__(self, *args: object) -> None:
            self.args = args

        async def share(self, data: bytes, filename: str, content_type: str) -> str:
            shared.append((data, filename, content_type))
            return "https://upload.example.org/chart.png"

    monkeypatch.setattr(upload, "HttpUpload", FakeUpload)
    sharing = client._UploadOnFirstShare(None, "upload.example.org", None)  # type: ignore[arg-type]
    assert sharing.upload is None
    url = await sharing.share(b"png", "chart.png", "image/png")
    assert url == "https://upload.example.org/chart.png"
    assert isinstance(sharing.upload, FakeUpload)
    assert sharing.upload.args == (None, "upload.example.org", None)
    assert shared == [(b"png", "chart.png", "image/png")]
