"""The replay file format, the replay backend and the shared scanner (no D-Bus, no bleak)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
from importlib.resources import files
from pathlib import Path

import pytest
from ble_fakes import FakeBackend

from drivers.ble.advertisement import (
    Advertisement,
    ReplayFormatError,
    decode_line,
    encode_line,
    normalize_address,
)
from drivers.ble.replay import ReplayBackend, read_replay_file
from drivers.ble.scan_backend import BackendUnavailable
from drivers.ble.scanner import SharedScanner, shared_scanner
from hubd.core.settings import BleSettings, BusSettings
from hubd.errors import DriverUnavailable
from hubd.testing.drivers import make_context

BTHOME = "0000fcd2-0000-1000-8000-00805f9b34fb"
CONTRACT_LINE = (
    '{"t": 0.0, "address": "A4:C1:38:12:34:56", "rssi": -61, "name": "ATC_123456", '
    '"service_uuids": ["0000fcd2-0000-1000-8000-00805f9b34fb"], "service_data": '
    '{"0000fcd2-0000-1000-8000-00805f9b34fb": "40 01 5c 02 0a09 03 bf13"}, '
    '"manufacturer_data": {}}'
)
DEMO = Path(str(files("drivers.ble") / "samples" / "demo.jsonl"))


def test_the_contract_example_line_decodes() -> None:
    t, advert = decode_line(CONTRACT_LINE)
    assert t == 0.0
    assert advert == Advertisement(
        address="A4:C1:38:12:34:56",
        rssi=-61,
        name="ATC_123456",
        service_uuids=(BTHOME,),
        service_data={BTHOME: bytes.fromhex("40015c020a0903bf13")},
    )


def test_encode_then_decode_is_the_identity() -> None:
    advert = Advertisement(
        address="CB:B8:33:4C:88:4F",
        rssi=None,
        name=None,
        manufacturer_data={0x0499: bytes.fromhex("0512fc")},
    )
    line = encode_line(1.23456, advert)
    assert json.loads(line)["manufacturer_data"] == {"1177": "0512fc"}
    assert decode_line(line) == (1.235, advert)


def test_minimal_line() -> None:
    assert decode_line('{"t": 2, "address": "aa-bb-cc-dd-ee-ff"}') == (
        2.0,
        Advertisement(address="AA:BB:CC:DD:EE:FF"),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"t": 0, "address": "A4:C1:38:12:34:56", "rsi": 1}', "unknown key(s) rsi"),
        ('{"address": "A4:C1:38:12:34:56"}', "t: must be a number"),
        ('{"t": -1, "address": "A4:C1:38:12:34:56"}', "t: must be a number"),
        ('{"t": 0}', "address: required"),
        ('{"t": 0, "address": "A4:C1:38"}', "address: not a Bluetooth address"),
        ('{"t": 0, "address": "A4:C1:38:12:34:56", "rssi": "x"}', "rssi: must be an integer"),
        ('{"t": 0, "address": "A4:C1:38:12:34:56", "service_data": {"fcd2": "40"}}', "128-bit"),
        (
            '{"t": 0, "address": "A4:C1:38:12:34:56", "service_data": {"' + BTHOME + '": "4x"}}',
            "is not hex",
        ),
        (
            '{"t": 0, "address": "A4:C1:38:12:34:56", "manufacturer_data": {"0x499": "00"}}',
            "company id in decimal",
        ),
    ],
)
def test_bad_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(ReplayFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode_line(line)


def test_file_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    path.write_text(CONTRACT_LINE + "\n\n# a comment\n" + '{"t": 1, "address": "nope"}\n')
    with pytest.raises(ReplayFormatError, match=rf"^{path}:4: address: "):
        read_replay_file(path)
    path.write_text(
        '{"t": 2, "address": "A4:C1:38:12:34:56"}\n{"t": 1, "address": "A4:C1:38:12:34:56"}\n'
    )
    with pytest.raises(ReplayFormatError, match=rf"^{path}:2: t: 1 is earlier"):
        read_replay_file(path)
    path.write_text("\n")
    with pytest.raises(ReplayFormatError, match="no advertisements"):
        read_replay_file(path)
    with pytest.raises(ReplayFormatError, match="cannot read"):
        read_replay_file(tmp_path / "missing.jsonl")


def test_the_shipped_demo_recording_is_valid() -> None:
    entries = read_replay_file(DEMO)
    addresses = {advert.address for _, advert in entries}
    assert addresses == {
        "A4:C1:38:12:34:56",
        "54:48:E6:8F:80:A5",
        "A4:C1:38:02:83:F4",
        "CB:B8:33:4C:88:4F",
    }


def test_normalize_address() -> None:
    assert normalize_address(" a4:c1:38:12:34:56 ") == "A4:C1:38:12:34:56"
    with pytest.raises(ValueError, match="not a Bluetooth address"):
        normalize_address("A4C138123456")


# -- playback --------------------------------------------------------------------------


def write_recording(path: Path, times: list[float]) -> Path:
    path.write_text(
        "".join(
            encode_line(t, Advertisement(address=f"A4:C1:38:00:00:{i:02X}", rssi=-i)) + "\n"
            for i, t in enumerate(times)
        )
    )
    return path


async def test_replay_keeps_the_recorded_timing_scaled_by_speed(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.jsonl", [0.0, 0.5, 1.0])
    backend = ReplayBackend(path, speed=10)
    loop = asyncio.get_running_loop()
    received: list[tuple[float, str]] = []
    start = loop.time()
    await backend.start(lambda advert: received.append((loop.time() - start, advert.address)))
    async with asyncio.timeout(5):
        await backend.finished.wait()
    await backend.stop()
    assert [address for _, address in received] == [
        "A4:C1:38:00:00:00",
        "A4:C1:38:00:00:01",
        "A4:C1:38:00:00:02",
    ]
    # 1.0 s at speed 10 is 0.1 s: not before (timers never fire early).
    assert received[2][0] >= 0.1 - 0.005
    assert received[2][0] < 1.0


async def test_replay_loops_until_stopped(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.jsonl", [0.0, 0.01])
    backend = ReplayBackend(path, speed=100, loop=True)
    enough = asyncio.Event()
    received: list[str] = []

    def on_advert(advert: Advertisement) -> None:
        received.append(advert.address)
        if len(received) >= 5:
            enough.set()

    await backend.start(on_advert)
    async with asyncio.timeout(5):
        await enough.wait()
    await backend.stop()
    assert received[:4] == ["A4:C1:38:00:00:00", "A4:C1:38:00:00:01"] * 2
    count = len(received)
    await asyncio.sleep(0)  # stopped: nothing more arrives
    assert len(received) == count


async def test_a_bad_replay_file_is_backend_unavailable_with_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 0, "address": "A4:C1:38:12:34:56", "rssi": 1.5}\n')
    with pytest.raises(BackendUnavailable, match=rf"^{path}:1: rssi"):
        await ReplayBackend(path).start(lambda advert: None)


# -- the shared scanner ----------------------------------------------------------------


async def test_scanner_runs_while_someone_listens_and_routes_by_address() -> None:
    backend = FakeBackend()
    scanner = SharedScanner(backend)
    got_a: list[Advertisement] = []
    got_b: list[Advertisement] = []
    sub_a = await scanner.subscribe("a4:c1:38:00:00:0a", got_a.append)
    sub_b = await scanner.subscribe("A4:C1:38:00:00:0B", got_b.append)
    assert backend.starts == 1
    assert scanner.running
    assert backend.deliver is not None
    backend.deliver(Advertisement(address="A4:C1:38:00:00:0A"))
    backend.deliver(Advertisement(address="A4:C1:38:00:00:FF"))
    assert [a.address for a in got_a] == ["A4:C1:38:00:00:0A"]
    assert got_b == []
    await scanner.unsubscribe(sub_a)
    assert backend.stops == 0
    await scanner.unsubscribe(sub_b)
    assert backend.stops == 1
    assert not scanner.running
    await scanner.subscribe("A4:C1:38:00:00:0A", got_a.append)
    assert backend.starts == 2
    await scanner.close()
    assert backend.stops == 2
    with pytest.raises(DriverUnavailable, match="closed"):
        await scanner.subscribe("A4:C1:38:00:00:0A", got_a.append)


async def test_a_failing_subscriber_does_not_starve_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    scanner = SharedScanner(backend)
    got: list[Advertisement] = []

    def broken(advert: Advertisement) -> None:
        raise RuntimeError("bug")

    await scanner.subscribe("A4:C1:38:00:00:0A", broken)
    await scanner.subscribe("A4:C1:38:00:00:0A", got.append)
    assert backend.deliver is not None
    backend.deliver(Advertisement(address="A4:C1:38:00:00:0A"))
    assert len(got) == 1
    assert "BLE subscriber of A4:C1:38:00:00:0A failed" in caplog.text
    await scanner.close()


async def test_an_unavailable_backend_is_logged_once_and_retried_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    backend = FakeBackend(failure="no D-Bus")
    scanner = SharedScanner(backend, clock=lambda: now[0])
    caplog.set_level(logging.INFO)
    for _ in range(3):
        with pytest.raises(DriverUnavailable, match=r"^no D-Bus$"):
            await scanner.subscribe("A4:C1:38:00:00:0A", lambda a: None)
    assert backend.starts == 1  # nodes starting together try once
    now[0] += 10
    with pytest.raises(DriverUnavailable):
        await scanner.subscribe("A4:C1:38:00:00:0A", lambda a: None)
    assert backend.starts == 2
    warnings = [r for r in caplog.records if "Bluetooth LE is unavailable" in r.getMessage()]
    assert len(warnings) == 1
    assert "the rest of the hub keeps running" in warnings[0].getMessage()
    backend.failure = None
    now[0] += 10
    await scanner.subscribe("A4:C1:38:00:00:0A", lambda a: None)
    assert "Bluetooth LE is available again (fake)" in caplog.text
    await scanner.close()


async def test_a_silent_scan_is_restarted_and_the_spell_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """bluetoothd restarted under the scan: nothing more arrives until it is started again."""
    caplog.set_level(logging.DEBUG, logger="drivers.ble.scanner")
    backend = FakeBackend()
    scanner = SharedScanner(backend, silence=0.05)
    got: list[Advertisement] = []
    await scanner.subscribe("A4:C1:38:00:00:0A", got.append)
    for restarts in (1, 2):
        backend.started.clear()
        await asyncio.wait_for(backend.started.wait(), 5)
        assert (backend.starts, backend.stops) == (restarts + 1, restarts)
    warnings = [r for r in caplog.records if "restarting the scan" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
    assert warnings[0].getMessage().startswith("no Bluetooth LE advertisement for 0 s on fake")
    backend.send(Advertisement(address="A4:C1:38:00:00:0A"))
    assert len(got) == 1
    assert "Bluetooth LE advertisements heard again on fake" in caplog.text
    await scanner.close()
    assert scanner._watchdog is not None
    assert scanner._watchdog.done(), "the watchdog ends with the scanner"


async def test_a_scan_that_cannot_restart_is_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="drivers.ble.scanner")
    now = [100.0]
    backend = FakeBackend()
    scanner = SharedScanner(backend, clock=lambda: now[0], silence=0.05)
    await scanner.subscribe("A4:C1:38:00:00:0A", lambda a: None)
    backend.failure = "adapter hci0 is gone"
    backend.attempted.clear()
    await asyncio.wait_for(backend.attempted.wait(), 5)
    assert not scanner.running
    assert "Bluetooth LE is unavailable: adapter hci0 is gone" in caplog.text
    backend.failure = None
    now[0] += 10  # past RETRY_AFTER
    backend.started.clear()
    await asyncio.wait_for(backend.started.wait(), 5)
    assert scanner.running
    assert "Bluetooth LE is available again (fake)" in caplog.text
    await scanner.close()


async def test_the_radio_scanner_restarts_after_ble_rescan_after() -> None:
    ctx, _ = make_context(
        "fridge", settings=BusSettings(ble=BleSettings(adapter="hci1", rescan_after=42))
    )
    scanner = shared_scanner(ctx)
    assert scanner.silence == 42
    assert scanner.backend.label == "hci1"
    await ctx.resources.close_all()


def test_replay_and_the_core_never_import_bleak(tmp_path: Path) -> None:
    """A GPIO-only Pi never loads bleak; neither does a replayed BLE device."""
    code = textwrap.dedent(
        f"""
        import asyncio, sys
        import hubd.service.app, hubd.service.cli, drivers.gpio.output
        assert "bleak" not in sys.modules, "imported by the core"
        from drivers.ble.bthome_driver import BTHomeDriver, BTHomeConfig
        from hubd.core.settings import BleSettings, BusSettings
        from hubd.testing.drivers import make_context
        from pathlib import Path

        async def main():
            ble = BleSettings(replay=Path({str(DEMO)!r}), speed=20)
            ctx, rec = make_context("fridge", settings=BusSettings(ble=ble))
            config = BTHomeConfig(id="fridge", driver="ble.bthome", address="A4:C1:38:12:34:56")
            driver = BTHomeDriver(config, ctx)
            await driver.start()
            await driver.stop()
            await ctx.resources.close_all()
            assert rec.latest("temperature") is not None

        asyncio.run(main())
        assert "bleak" not in sys.modules, "imported by the replay path"
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- the recorder's command line (recording itself is tested against the mocked BlueZ) --


def test_recorder_cli_reports_a_missing_bus_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drivers.ble.record import EXIT_UNAVAILABLE, EXIT_USAGE, main

    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-such-bus")
    assert main(["-d", "1", "-o", str(tmp_path / "out.jsonl")]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert "Bluetooth LE is unavailable: no D-Bus system bus" in err
    assert "Traceback" not in err
    assert main(["--address", "nope"]) == EXIT_USAGE
    assert "not a Bluetooth address" in capsys.readouterr().err
