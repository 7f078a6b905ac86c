"""A broken driver plug-in is bad input, not a crash: tried as a user would, with real packages.

Each broken distribution is a real ``*.dist-info`` (METADATA and
entry_points.txt) on the ``PYTHONPATH`` of a ``hubd`` subprocess, so
``importlib.metadata`` finds it as it would a ``pip install``-ed package:

* ``hubd-typo``: its entry point names a module that does not exist (a typo
  in its pyproject.toml);
* ``hubd-needs-lib``: its module imports a library that is not installed;
* ``hubd-garbled``: its entry point's value is not ``module:attribute`` at all.

``hubd check`` names the distribution, the entry point and the import error
in one line, never a traceback; a config that uses none of them checks and
runs; ``hubd drivers`` lists them as broken beside the good ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hubd_process import HubdProcess

from hubd.testing.prosody import ProsodyServer

BROKEN = {
    # distribution: (entry point name, entry point value, module files)
    "hubd-typo": ("typo.sensor", "hubd_typo.drivr:SensorDriver", {"hubd_typo/__init__.py": ""}),
    "hubd-needs-lib": (
        "needs.lib",
        "hubd_needs_lib:LibDriver",
        {"hubd_needs_lib/__init__.py": "import hubd_library_not_installed\n"},
    ),
    "hubd-garbled": ("garbled", "hubd_garbled driver", {}),
}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A directory of installed-looking broken distributions."""
    root = tmp_path / "site"
    for dist, (name, value, files) in BROKEN.items():
        info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[hubd.drivers]\n{name} = {value}\n")
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
    return root


def _env(site: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    env.pop("JOURNAL_STREAM", None)
    return env


def hubd(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hubd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(site),
    )


def _config(tmp_path: Path, devices: str) -> Path:
    (tmp_path / "pw").write_text("secret\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        "xmpp: {jid: hub@example.org, password_file: pw}\n"
        "gpio: {pin_factory: mock}\n"
        "devices:\n" + textwrap.indent(textwrap.dedent(devices).strip(), "  ") + "\n"
    )
    return config


def test_the_broken_distributions_are_installed(site: Path) -> None:
    # Without this, every test below could pass against a hubd that never saw them.
    code = (
        "from importlib.metadata import entry_points;"
        "print(sorted(ep.name for ep in entry_points(group='hubd.drivers')))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env(site)
    )
    for name, _, _ in BROKEN.values():
        assert repr(name) in found.stdout


def test_a_config_without_the_broken_drivers_checks(site: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "- {id: lamp, driver: gpio.output, pin: 4}")
    result = hubd(site, "check", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "OK (1 devices, account hub@example.org)" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("dist", "error"),
    [
        ("hubd-typo", "No module named 'hubd_typo.drivr'"),
        ("hubd-needs-lib", "No module named 'hubd_library_not_installed'"),
        ("hubd-garbled", "hubd_garbled driver"),
    ],
)
def test_a_config_using_a_broken_driver_gets_one_clear_error(
    site: Path, tmp_path: Path, dist: str, error: str
) -> None:
    name, value, _ = BROKEN[dist]
    config = _config(
        tmp_path,
        f"""
        - {{id: lamp, driver: gpio.output, pin: 4}}
        - {{id: broken, driver: {name}}}
        """,
    )
    result = hubd(site, "check", "-c", str(config))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"{config}: 1 problem:"
    assert lines[1].startswith(f"  {config}:5: devices[1] (broken): driver: ")
    # The distribution to fix or uninstall, the entry point, and what went wrong.
    assert f"package {dist} 1.0" in lines[1]
    assert f"{name} = {value}" in lines[1]
    assert error in lines[1]
    assert len(lines) == 2


def test_run_refuses_a_broken_driver_without_a_traceback(site: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, "- {id: broken, driver: typo.sensor}")
    result = hubd(site, "run", "-c", str(config))
    assert result.returncode == 78
    assert "refusing to start" in result.stderr
    assert "package hubd-typo 1.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_drivers_lists_the_broken_ones_beside_the_good(site: Path) -> None:
    result = hubd(site, "drivers")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "    pin (int, required): BCM pin number" in result.stdout  # gpio.output, whole
    blocks = {block.split("\n", 1)[0]: block for block in result.stdout.split("\n\n")}
    for dist, (name, value, _) in BROKEN.items():
        block = blocks[name]
        assert f"broken: package {dist} 1.0, entry point {name} = {value}" in block


async def test_a_hub_without_the_broken_drivers_runs(
    site: Path, tmp_path: Path, prosody: ProsodyServer
) -> None:
    hub = HubdProcess(
        tmp_path / "hub",
        prosody,
        devices="\n  - {id: lamp, driver: gpio.output, pin: 4}",
        extra_env={"PYTHONPATH": _env(site)["PYTHONPATH"]},
    )
    async with hub.running():
        await hub.wait_for_log(r"node lamp is online")
    assert "Traceback" not in hub.log()
