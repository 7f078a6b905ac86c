"""The plug-in story, proven by a package that is not hubd: ``examples/hubd-driver-example``.

The example is installed as a user would install a driver (``pip install DIR``)
into a fresh virtualenv of its own, then found by hubd through its
``hubd.drivers`` entry point: ``hubd drivers`` lists it, ``hubd check``
validates a device of it with its own options, its own tests pass against the
fakes hubd ships, and a real ``hubd run`` serves it to an XMPP client that
reads its value and sets its writable field.

The venv has no pip and no packages of its own: a ``.pth`` file adds this
interpreter's site-packages (hubd, pip, setuptools), so creating it costs no
download and no copy, and ``pip install --no-deps --no-build-isolation
--no-index`` builds the example with the setuptools at hand, offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from hubd_process import HubdProcess
from iot_client import CTRL, SD, IqFailure, field_values, iq, readout
from xmpp_client import TestClient

from hubd.testing.prosody import ProsodyServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hubd-driver-example"
DEVICE = """
  - id: clicks
    name: Click counter
    driver: example.counter
    interval: 3600
    maximum: 1000
"""
TIMEOUT = 120


def venv_environ() -> dict[str, str]:
    """This environment without PYTHONPATH/PYTHONHOME: the venv sees its packages and ours only."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def run(args: Sequence[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command of the plug-in venv; its output is part of any failure."""
    return subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env=venv_environ(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the venv's python, the example's copy): the example installed, hubd visible."""
    root = tmp_path_factory.mktemp("plugin")
    # A copy: building writes build/ and *.egg-info next to the sources.
    source = root / "hubd-driver-example"
    shutil.copytree(
        EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    venv = root / "venv"
    ok(run([sys.executable, "-m", "venv", "--without-pip", venv]))
    python = venv / "bin" / "python"
    purelib = ok(run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]))
    # addsitedir, not a bare path line: it also runs the .pth files there (hubd's
    # editable install is one).
    ours = dict.fromkeys((sysconfig.get_path("purelib"), sysconfig.get_path("platlib")))
    Path(purelib.strip(), "parent-venv.pth").write_text(
        "".join(f"import site; site.addsitedir({path!r})\n" for path in ours)
    )
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    ok(run([*pip, "--no-deps", "--no-build-isolation", "--no-index", source]))
    return python, source


def test_the_example_is_its_own_distribution_outside_hubd(plugin_venv: tuple[Path, Path]) -> None:
    python, _ = plugin_venv
    script = (
        "import importlib.metadata as m, hubd_counter, hubd;"
        "print(m.distribution('hubd-driver-example').version);"
        "print(hubd_counter.__file__); print(hubd.__file__)"
    )
    where = ok(run([python, "-c", script])).split()
    assert where[0] == "0.1.0"
    assert Path(where[1]).is_relative_to(python.parent.parent), "installed into the venv"
    assert not Path(where[2]).is_relative_to(python.parent.parent), "hubd is not copied"
    # The interpreter running this test does not know the example: only the venv does.
    assert "example.counter" not in {point.name for point in entry_points(group="hubd.drivers")}


def test_hubd_drivers_lists_it_next_to_hubds_own(plugin_venv: tuple[Path, Path]) -> None:
    python, _ = plugin_venv
    listing = ok(run([python, "-m", "hubd", "drivers"]))
    entry = listing.split("example.counter\n", 1)[1].split("\n\n", 1)[0]
    assert "A simulated counter: ``count`` goes up by ``step`` every ``interval`` seconds." in entry
    assert "interval (float, default 1.0): seconds between ticks" in entry
    assert "count: long, writable" in entry
    assert "\ngpio.output\n" in listing


def test_its_own_tests_pass_with_the_fakes_hubd_ships(plugin_venv: tuple[Path, Path]) -> None:
    python, source = plugin_venv
    output = ok(run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=source))
    assert " passed" in output
    assert "failed" not in output


def test_hubd_check_validates_its_options(
    plugin_venv: tuple[Path, Path], prosody: ProsodyServer, tmp_path: Path
) -> None:
    python, _ = plugin_venv
    good = HubdProcess(tmp_path / "good", prosody, devices=DEVICE)
    assert ok(run([python, "-m", "hubd", "check", "-c", good.config_file])).endswith(
        f"OK (1 devices, account {prosody.jid('hub')})\n"
    )
    bad = HubdProcess(tmp_path / "bad", prosody, devices=DEVICE.replace("maximum", "maximun"))
    result = run([python, "-m", "hubd", "check", "-c", bad.config_file])
    assert result.returncode == 1
    assert (
        "devices[0] (clicks): maximun: unknown key; did you mean 'maximum'?"
        " (allowed: id, name, driver, access, interval, step, maximum)"
    ) in result.stderr


class VenvHubd(HubdProcess):
    """``hubd run`` by the plug-in venv's interpreter (HubdProcess runs this test's own)."""

    def __init__(self, python: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.python = python

    def start(self) -> None:
        env = venv_environ()
        env.pop("JOURNAL_STREAM", None)
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "hubd", "run", "-c", self.config_file],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )


async def read_count(client: TestClient, jid: str, seqnr: int) -> dict[str, str]:
    request = f"<req xmlns='{SD}' seqnr='{seqnr}' momentary='true'><node nodeId='clicks'/></req>"
    _, payloads = await readout(client, jid, request)
    return field_values(payloads[0])["clicks"]


async def set_count(client: TestClient, jid: str, value: str) -> Element | IqFailure:
    control = (
        f"<set xmlns='{CTRL}'><node nodeId='clicks'/><long name='count' value='{value}'/></set>"
    )
    return await iq(client, jid, control, "set")


async def test_a_client_reads_and_sets_it_in_a_running_hub(
    plugin_venv: tuple[Path, Path], prosody: ProsodyServer, alice: TestClient, tmp_path: Path
) -> None:
    python, _ = plugin_venv
    hub = VenvHubd(python, tmp_path / "hubd", prosody, devices=DEVICE)
    async with hub.running():
        await hub.wait_for_log(r"node clicks is online")
        assert await read_count(alice, hub.jid, 1) == {"count": "0"}

        answer = await set_count(alice, hub.jid, "42")
        assert isinstance(answer, Element), answer
        assert answer.tag == f"{{{CTRL}}}setResponse"
        assert (await read_count(alice, hub.jid, 2))["count"] == "42"
        await hub.wait_for_log(r"control by alice@localhost/\S+: clicks\.count = 42 done")

        # The hub checks the value against the driver's field description first.
        refused = await set_count(alice, hub.jid, "1001")
        assert isinstance(refused, IqFailure)
        assert refused.condition == "bad-request"
        assert "above the maximum 1000" in refused.text
        assert (await read_count(alice, hub.jid, 3))["count"] == "42"
    assert "Traceback" not in hub.log()
