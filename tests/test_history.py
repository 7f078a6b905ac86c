"""``history`` and ``plot`` below XMPP: the summaries on boundary data, the commands over a
real state file, the access rules, and what is (not) uploaded.  The chart is really drawn
(the worker process); the upload is a recording fake of hubd.people's FileSharing port."""

from __future__ import annotations

import io
from datetime import timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image
from test_commands import NOW, STATE_RO, TEMPERATURE, make_commands
from test_config import GOOD, problems, write
from test_provisioned_fields_people import DAVE, make_house

from hubd.core.access import AccessPolicy
from hubd.core.access_lists import DeviceAccess
from hubd.core.config import load_config
from hubd.core.model import FieldValue
from hubd.errors import UploadRefused, UploadUnavailable
from hubd.events.store import Store
from hubd.events.subscriptions import encode_value
from hubd.events.tables import HistoryRow
from hubd.people.chart import (
    AXIS_HEIGHT,
    MISSING_LIBRARY,
    NUMERIC_PANEL_HEIGHT,
    TITLE_HEIGHT,
    WIDTH,
    ChartSpec,
    Panel,
    Series,
    reduce_points,
)
from hubd.people.command import SharedFile
from hubd.people.commands import NOT_AUTHORISED, ChatCommands
from hubd.people.history_commands import register_history
from hubd.people.history_summary import parse_period, summarise

ZONE = timezone(timedelta(hours=1), "CET")
START = (NOW - timedelta(hours=24)).timestamp()
BOB = "bob@example.org/phone"
MALLORY = "mallory@evil.example/x"


def at(hours_ago: float) -> float:
    return (NOW - timedelta(hours=hours_ago)).timestamp()


def numbers(*pairs: tuple[float, str]) -> list[tuple[float, str, str]]:
    return [(at(h), "numeric", v) for h, v in pairs]


# --------------------------------------------------------------------- summaries


def test_periods() -> None:
    assert parse_period("24h") is not None
    assert parse_period("7D").words == "7 days"  # type: ignore[union-attr]
    assert parse_period("1d").words == "1 day"  # type: ignore[union-attr]
    assert parse_period("30d").seconds == 30 * 86400  # type: ignore[union-attr]
    for bad in ("", "h", "0h", "-1h", "1w", "24", "1.5h", "9999d"):
        assert parse_period(bad) is None, bad


def test_no_readings_at_all() -> None:
    line = summarise(TEMPERATURE, [], None, start=START, now=NOW, zone=ZONE)
    assert line == "temperature: no readings"


def test_one_reading() -> None:
    line = summarise(TEMPERATURE, numbers((2, "21.5")), None, start=START, now=NOW, zone=ZONE)
    assert line == "temperature: 21.5 °C at 11:00; 1 reading"  # 10:00 UTC is 11:00 CET


def test_min_max_mean_with_their_times() -> None:
    readings = numbers((5, "21.5"), (4, "19.0"), (3, "23.25"), (1, "22.0"))
    line = summarise(TEMPERATURE, readings, None, start=START, now=NOW, zone=ZONE)
    assert line == (
        "temperature: min 19.0 °C (09:00), max 23.25 °C (10:00), mean 21.438 °C;"
        " latest 22.0 °C (12:00); 4 readings"
    )


def test_a_gap_spanning_the_period_says_what_was_held() -> None:
    before = (at(50), "numeric", "18.5")
    line = summarise(TEMPERATURE, [], before, start=START, now=NOW, zone=ZONE)
    assert line == "temperature: no new readings; 18.5 °C all along (since Mon 11:00, 2 days ago)"


def test_a_clock_step_leaves_future_readings_out_and_sorts_the_rest() -> None:
    # Stored in this order: the clock was 2 h ahead, then stepped back.
    readings = [(at(-2), "numeric", "30.0"), *numbers((3, "20.0"), (6, "18.0"), (1, "21.0"))]
    line = summarise(TEMPERATURE, readings, None, start=START, now=NOW, zone=ZONE)
    assert line == (
        "temperature: min 18.0 °C (07:00), max 21.0 °C (12:00), mean 19.67 °C;"
        " latest 21.0 °C (12:00); 3 readings"
        " (1 reading stamped after now left out: the clock was ahead)"
    )


def test_only_readings_ahead_of_the_clock() -> None:
    readings = [(at(-1), "numeric", "30.0"), (at(-3), "numeric", "31.0")]
    line = summarise(TEMPERATURE, readings, None, start=START, now=NOW, zone=ZONE)
    assert line == (
        "temperature: no readings (2 readings stamped after now left out: the clock was ahead)"
    )


def test_switches_count_changes_from_the_state_before_the_period() -> None:
    before = (at(30), "boolean", "false")
    readings = [
        (at(h), "boolean", v)
        for h, v in ((10, "true"), (9, "false"), (5, "true"), (4, "true"), (2, "false"))
    ]
    line = summarise(STATE_RO, readings, before, start=START, now=NOW, zone=ZONE)
    assert line == (
        "state: turned on 2 times, last 08:00; turned off 2 times, last 11:00; now off; 5 readings"
    )


def test_a_switch_that_never_changed() -> None:
    readings = [(at(3), "boolean", "true")]
    line = summarise(STATE_RO, readings, None, start=START, now=NOW, zone=ZONE)
    assert line == "state: no changes; now on; 1 reading"


def test_times_older_than_today_carry_the_day() -> None:
    readings = numbers((20, "10.0"), (1, "12.0"))
    line = summarise(TEMPERATURE, readings, None, start=START, now=NOW, zone=ZONE)
    assert "min 10.0 °C (Tue 17:00)" in line  # 30 Apr 16:00 UTC


def test_reduction_keeps_spikes_and_bounds_the_points() -> None:
    points = [(float(i), 1.0) for i in range(100_000)]
    points[54_321] = (54_321.0, 99.0)
    kept = reduce_points(points, 0.0, 100_000.0, 500)
    assert len(kept) <= 4 * 500
    assert (54_321.0, 99.0) in kept
    assert kept == sorted(kept)
    assert reduce_points(points[:10], 0.0, 10.0, 500) == points[:10]


def test_chart_size_is_what_the_spec_promises() -> None:
    spec = ChartSpec("t", "s", 0.0, 1.0, [Panel("°C", False, [Series("x", [(0.0, 1.0)])])])
    assert spec.size == (WIDTH, TITLE_HEIGHT + AXIS_HEIGHT + NUMERIC_PANEL_HEIGHT)
    assert ChartSpec.from_json(spec.to_json()) == spec


# ---------------------------------------------------------------------- commands


class Sharing:
    """Records what would be uploaded; or refuses like a server would."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.files: list[tuple[bytes, str, str]] = []

    async def share(self, data: bytes, filename: str, content_type: str) -> str:
        if self.error is not None:
            raise self.error
        self.files.append((data, filename, content_type))
        return f"https://upload.example.org/{filename}"


async def stored(tmp_path: Path, rows: list[tuple[str, str, float, object]]) -> Store:
    store = Store(tmp_path / "hubd.sqlite")
    await store.open()
    history = []
    for node, name, hours_ago, value in rows:
        stamp = NOW - timedelta(hours=hours_ago)
        reading = encode_value(FieldValue(name, value, stamp))  # type: ignore[arg-type]
        history.append(HistoryRow(node, name, stamp.timestamp(), reading))
    await store.record(history)
    return store


WEATHER_DAY = [
    ("weather", "temperature", 5.0, Decimal("21.5")),
    ("weather", "temperature", 3.0, Decimal("19.0")),
    ("weather", "humidity", 3.0, Decimal("45")),
    ("weather", "temperature", 1.0, Decimal("23.0")),
    ("front-door", "state", 2.0, True),
    ("front-door", "state", 1.5, False),
]


async def with_history(
    tmp_path: Path, sharing: Sharing, commands: ChatCommands | None = None
) -> tuple[ChatCommands, Store]:
    if commands is None:
        commands, _ = await make_commands()
    commands.timeout = 60.0  # the chart is drawn by a real worker process
    store = await stored(tmp_path, WEATHER_DAY)
    register_history(commands, store, sharing)
    return commands, store


async def test_history_of_a_device(tmp_path: Path) -> None:
    commands, store = await with_history(tmp_path, Sharing())
    try:
        reply = await commands.handle(BOB, "history weather")
        lines = reply.splitlines()
        assert lines[0].startswith("Weather, last 24 h (times ")
        assert lines[1].startswith("- temperature: min 19.0 °C (")
        assert lines[1].endswith("; 3 readings")
        assert lines[2].startswith("- humidity: 45% at ")
        reply = await commands.handle(BOB, "history front-door 1h")
        assert "state: no new readings; off all along" in reply
        assert (
            await commands.handle(BOB, "history dimmer") == "No history of dimmer in the last 24 h."
        )
        reply = await commands.handle(BOB, "history weather pressure")
        assert reply.startswith("weather has no field 'pressure'; fields: temperature, humidity")
        reply = await commands.handle(BOB, "history weather temperature soon")
        assert reply.startswith("'soon' is not a period: try 1h, 24h, 7d or 30d")
    finally:
        await store.close()


async def test_plot_draws_and_shares_a_png(tmp_path: Path) -> None:
    sharing = Sharing()
    commands, store = await with_history(tmp_path, sharing)
    try:
        reply = await commands.handle(BOB, "plot weather temperature 24h")
        assert isinstance(reply, SharedFile)
        (data, name, kind), *_ = sharing.files
        assert reply == f"https://upload.example.org/{name}"
        assert name.startswith("weather-24h-")
        assert kind == "image/png"
        image = Image.open(io.BytesIO(data))
        assert image.size == (WIDTH, TITLE_HEIGHT + AXIS_HEIGHT + NUMERIC_PANEL_HEIGHT)
        assert isinstance(await commands.handle(BOB, "plot front-door 24h"), SharedFile)
    finally:
        await store.close()


async def test_nothing_to_plot_uploads_nothing(tmp_path: Path) -> None:
    sharing = Sharing()
    commands, store = await with_history(tmp_path, sharing)
    try:
        reply = await commands.handle(BOB, "plot dimmer 7d")
        assert reply == "No history of dimmer in the last 7 days: nothing to plot."
        reply = await commands.handle(BOB, "plot weather humidity 1h")
        assert reply == "No history of weather in the last 1 h: nothing to plot."
        assert sharing.files == []
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("error", "start"),
    [
        (
            UploadUnavailable("the server example.org offers no file upload"),
            "Cannot send pictures: the server example.org offers no file upload. Ask the"
            " server's admin for HTTP File Upload (XEP-0363), or set uploads: service:",
        ),
        (
            UploadRefused("the hub's upload quota is used up for now"),
            "The server refused the chart: the hub's upload quota is used up for now."
            " Try: history weather 24h",
        ),
    ],
)
async def test_upload_failures_are_said(tmp_path: Path, error: Exception, start: str) -> None:
    commands, store = await with_history(tmp_path, Sharing(error))
    try:
        reply = await commands.handle(BOB, "plot weather")
        assert not isinstance(reply, SharedFile)
        assert reply.startswith(start), reply
    finally:
        await store.close()


async def test_strangers_and_hidden_devices_get_nothing(tmp_path: Path) -> None:
    sharing = Sharing()
    commands, _ = await make_commands()
    commands.access = AccessPolicy(
        readers=["bob@example.org"], devices={"weather": DeviceAccess(readers=["eve@example.org"])}
    )
    commands.lookup.access = commands.access
    commands, store = await with_history(tmp_path, sharing, commands)
    try:
        for line in ("plot weather", "history weather", "plot front-door"):
            assert await commands.handle(MALLORY, line) == NOT_AUTHORISED
        # eve may read the weather station only: the door does not exist for her.
        assert isinstance(await commands.handle("eve@example.org/x", "plot weather"), SharedFile)
        reply = await commands.handle("eve@example.org/x", "plot front-door")
        assert reply.startswith("No device 'front-door'.")
        assert len(sharing.files) == 1
    finally:
        await store.close()


async def test_provisioning_narrows_the_fields(tmp_path: Path) -> None:
    sharing = Sharing()
    house = make_house()
    commands, store = await with_history(tmp_path, sharing, house.commands)
    try:
        # dave may read temperature only: humidity is answered as if it did not exist.
        reply = await commands.handle(DAVE, "history weather humidity")
        assert reply.startswith("weather has no field 'humidity'; fields: temperature")
        reply = await commands.handle(DAVE, "plot weather humidity")
        assert reply.startswith("weather has no field 'humidity'")
        assert sharing.files == []
        reply = await commands.handle(DAVE, "history weather")
        assert "temperature" in reply
        assert "humidity" not in reply
    finally:
        await store.close()


async def test_without_the_drawing_library_the_reply_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker inherits the environment: a PIL that cannot be imported shadows Pillow.
    (tmp_path / "shadow" / "PIL").mkdir(parents=True)
    (tmp_path / "shadow" / "PIL" / "__init__.py").write_text("raise ImportError('no Pillow')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "shadow"))
    sharing = Sharing()
    commands, store = await with_history(tmp_path, sharing)
    try:
        reply = await commands.handle(BOB, "plot weather")
        assert reply == f"Cannot draw the chart: {MISSING_LIBRARY}"
        assert sharing.files == []
    finally:
        await store.close()


def test_uploads_config(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD), environ={}).uploads.service is None
    text = GOOD + "uploads:\n  service: upload.example.org\n"
    assert load_config(write(tmp_path, text), environ={}).uploads.service == "upload.example.org"
    path = write(tmp_path, GOOD + "uploads:\n  service: alice@example.org\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:17: uploads.service: ")
    assert "must be a service's JID, like upload.example.org" in problem
    path = write(tmp_path, GOOD + "uploads:\n  server: upload.example.org\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:17: uploads.server: unknown key")
