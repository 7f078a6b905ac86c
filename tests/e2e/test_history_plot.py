"""``history`` and ``plot`` end to end: a real hubd, a real Prosody with HTTP File Upload.

The weather station is a pseudo-terminal device; a day of older readings is
put in hubd's state file before it starts (the way a day of running would have
left them), so the chart has something to show.  The hub runs in a fixed
zone (``TZ=CET-1``) to prove that times are the hub's local time.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import math
import os
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from accounts import ACCOUNTS
from hubd_process import HubdProcess
from PIL import Image
from pty_device import Pty
from slixmpp import JID
from xmpp_client import TestClient, connect_client

from hubd.core.model import FieldValue
from hubd.events.store import Store
from hubd.events.subscriptions import encode_value
from hubd.events.tables import HistoryRow
from hubd.people.chart import (
    AXIS_HEIGHT,
    BOOLEAN_PANEL_HEIGHT,
    NUMERIC_PANEL_HEIGHT,
    TITLE_HEIGHT,
    WIDTH,
)
from hubd.testing.prosody import ProsodyServer

HUB = "hub@localhost"
NS_OOB = "jabber:x:oob"
NS_COMMANDS = "http://jabber.org/protocol/commands"
NS_DATA = "jabber:x:data"
ZONE = "CET-1"  # POSIX: one hour east of UTC, named CET (no tz database needed)
DOCS_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "plot-example.png"


def weather(port: Path) -> str:
    return f"""
  - id: weather
    name: Weather station
    driver: serial.lines
    port: {port}
    format: json
    fields:
      temperature: {{unit: "°C"}}
      humidity: {{unit: "%"}}
      window: {{type: boolean}}
"""


def _server(workdir: Path, **options: int | bool) -> ProsodyServer:
    server = ProsodyServer(workdir, **options)  # type: ignore[arg-type]
    for user, password in ACCOUNTS.items():
        server.register(user, password)
    return server


@pytest.fixture(scope="module")
def upload_prosody(tmp_path_factory: pytest.TempPathFactory) -> ProsodyServer:
    """A Prosody of this module's own, with mod_http_file_share on upload.localhost."""
    with _server(tmp_path_factory.mktemp("prosody-uploads"), uploads=True) as server:
        yield server  # type: ignore[misc]


async def seed_day(state_dir: Path, now: datetime) -> None:
    """A day of readings, every 10 minutes, ending an hour before ``now``."""
    store = Store(state_dir / "hubd.sqlite")
    await store.open()
    rows = []
    start = now - timedelta(hours=25)
    for step in range(24 * 6 + 1):
        at = start + timedelta(minutes=10 * step)
        hour = step / 6
        temperature = Decimal(f"{14 + 6 * math.sin((hour - 8) / 24 * 2 * math.pi):.1f}")
        humidity = Decimal(f"{60 - 15 * math.sin((hour - 8) / 24 * 2 * math.pi):.0f}")
        for value in (
            FieldValue("temperature", temperature, at),
            FieldValue("humidity", humidity, at),
        ):
            rows.append(HistoryRow("weather", value.name, at.timestamp(), encode_value(value)))
        if step % 30 in (0, 3):  # the window opened and closed a few times
            window = FieldValue("window", step % 30 == 0, at)
            rows.append(HistoryRow("weather", "window", at.timestamp(), encode_value(window)))
    await store.record(rows)
    await store.close()


@pytest.fixture
async def station(tmp_path: Path) -> AsyncIterator[Pty]:
    device = Pty(tmp_path / "usb-weather")
    device.plug()
    yield device
    device.unplug()


async def start_hub(
    tmp_path: Path, server: ProsodyServer, device: Pty, extra_config: str = ""
) -> HubdProcess:
    await seed_day(tmp_path / "hubd" / "state", datetime.now(UTC))
    # history_sample 0: every change is stored (these tests count readings a second apart).
    extra_config = "events: {history_sample: 0}\n" + extra_config
    hub = HubdProcess(
        tmp_path / "hubd", server, devices=weather(device.link), verbose=True,
        extra_env={"TZ": ZONE}, extra_config=extra_config,
    )  # fmt: skip
    hub.start()
    await hub.wait_for_log(r"node weather is online")
    await hub.wait_for_log(r"connected to ")
    return hub


def _from_hub(message: object) -> bool:
    return message["from"].bare == HUB and bool(message["body"])  # type: ignore[index]


async def ask(client: TestClient, text: str) -> tuple[str, str | None]:
    """Type ``text`` to the hub; return the reply's body and its OOB URL (if any)."""
    client.send_message(mto=HUB, mbody=text, mtype="chat")
    reply = await client.wait_message(_from_hub, timeout=30)
    return reply["body"], reply.xml.findtext(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url")


async def ask_until(client: TestClient, text: str, needle: str) -> str:
    """Ask again until the reply holds ``needle`` (the history commits in batches)."""
    async with asyncio.timeout(15):
        while True:
            body, _ = await ask(client, text)
            if needle in body:
                return body


def fetch(url: str, ca_file: Path) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca_file))
    connection = http.client.HTTPSConnection(
        parts.hostname or "", parts.port, context=context, timeout=10
    )
    try:
        connection.request("GET", parts.path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


async def test_history_and_plot_through_the_servers_upload_service(
    upload_prosody: ProsodyServer, tmp_path: Path, station: Pty
) -> None:
    hub = await start_hub(tmp_path, upload_prosody, station)
    bob = await connect_client(upload_prosody, "bob", ACCOUNTS["bob"], resource="plots")
    mallory = await connect_client(upload_prosody, "mallory", ACCOUNTS["mallory"])
    try:
        for line in (
            b'{"temperature": 21.5, "humidity": 40, "window": false}\n',
            b'{"temperature": 19.0, "humidity": 41, "window": true}\n',
            b'{"temperature": 23.25, "humidity": 43, "window": false}\n',
            b'{"temperature": 22.0, "humidity": 42, "window": false}\n',
        ):
            hub.mark()
            station.write(line)
            await hub.wait_for_log(r"hubd\.node\.weather: line b'")

        # Only the four readings of the last hour: the seeded day ends before it.
        body = await ask_until(bob, "history weather temperature 1h", "4 readings")
        assert body.startswith("Weather station, last 1 h (CET): temperature: min 19.0 °C ("), body
        assert "max 23.25 °C (" in body
        assert "mean 21.438 °C; latest 22.0 °C (" in body, body
        local_now = datetime.now(UTC) + timedelta(hours=1)  # CET-1
        assert f"({local_now:%H}:" in body or f"({local_now - timedelta(minutes=1):%H}:" in body

        overview = await ask_until(bob, "history weather 24h", "window: turned on")
        assert "temperature: min 8.0 °C" in overview, overview
        assert "humidity: min 40% (" in overview, overview

        # plot: the body is the URL alone, and the same URL comes as OOB data.
        body, oob = await ask(bob, "plot weather 24h")
        assert oob == body, body
        assert body.startswith(f"https://localhost:{upload_prosody.https_port}/"), body
        status, kind, png = await asyncio.to_thread(fetch, body, upload_prosody.ca_file)
        assert (status, kind) == (200, "image/png")
        image = Image.open(io.BytesIO(png))
        image.load()
        height = TITLE_HEIGHT + AXIS_HEIGHT + 2 * NUMERIC_PANEL_HEIGHT + BOOLEAN_PANEL_HEIGHT
        assert image.format == "PNG"
        assert image.size == (WIDTH, height)
        if os.environ.get("HUBD_WRITE_PLOT_EXAMPLE"):
            DOCS_EXAMPLE.write_bytes(png)  # the README's picture, made once by hand

        body, oob = await ask(bob, "plot weather temperature 1h")
        assert oob == body, body
        assert body.startswith("https://"), body
        kept = upload_prosody.uploaded_files()
        assert len(kept) == 2, kept

        # A stranger: the usual refusal (one per ten minutes), and nothing uploaded.
        body, oob = await ask(mallory, "plot weather 24h")
        assert (body, oob) == ("Not authorised.", None)
        assert upload_prosody.uploaded_files() == kept
    finally:
        await bob.disconnect_and_wait()
        await mallory.disconnect_and_wait()
        await hub.stop()


async def test_plot_without_an_upload_service_says_so(
    prosody: ProsodyServer, tmp_path: Path, station: Pty
) -> None:
    hub = await start_hub(tmp_path, prosody, station)
    bob = await connect_client(prosody, "bob", ACCOUNTS["bob"], resource="plots")
    try:
        body, oob = await ask(bob, "plot weather 24h")
        assert oob is None
        assert body.startswith(
            "Cannot send pictures: the server localhost offers no file upload."
        ), body
        assert "uploads: service:" in body
        body, _ = await ask(bob, "history weather temperature 30d")
        assert "temperature: min 8.0 °C" in body, body
    finally:
        await bob.disconnect_and_wait()
        await hub.stop()


async def test_a_chart_larger_than_the_servers_limit_is_not_sent(
    tmp_path: Path, station: Pty
) -> None:
    with _server(tmp_path / "prosody", uploads=True, upload_size_limit=2000) as server:
        # Named in the config this time: asked directly, not found through disco#items.
        hub = await start_hub(tmp_path, server, station, "uploads: {service: upload.localhost}")
        bob = await connect_client(server, "bob", ACCOUNTS["bob"], resource="plots")
        try:
            body, oob = await ask(bob, "plot weather 24h")
            assert oob is None
            assert body.startswith("The server refused the chart: the file is too large ("), body
            assert "the server takes at most 2000)" in body, body
            assert server.uploaded_files() == []
            await hub.wait_for_log(r"HTTP File Upload: upload\.localhost \(max 2000 bytes\)")
        finally:
            await bob.disconnect_and_wait()
            await hub.stop()


async def test_the_plot_ad_hoc_command_sends_the_chart_as_a_message(
    upload_prosody: ProsodyServer, tmp_path: Path, station: Pty
) -> None:
    hub = await start_hub(tmp_path, upload_prosody, station)
    alice = await connect_client(upload_prosody, "alice", ACCOUNTS["alice"], resource="adhoc")
    try:
        commands = alice.plugin["xep_0050"]
        first = await commands.send_command(JID(hub.jid), "plot", timeout=10)
        form = first.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_DATA}}}x")
        assert form is not None
        fields = {f.get("var"): f for f in form.findall(f"{{{NS_DATA}}}field")}
        assert set(fields) == {"device", "fields", "period"}
        periods = [v.text for v in fields["period"].iter(f"{{{NS_DATA}}}value")]
        assert periods[0] == "24h"  # the preselected one, then the options
        assert set(periods[1:]) == {"1h", "24h", "7d", "30d"}
        answer = alice.plugin["xep_0004"].make_form(ftype="submit")
        for var, value in {"device": "weather", "fields": "temperature", "period": "24h"}.items():
            answer.add_field(var=var, value=value)
        done = await commands.send_command(
            JID(hub.jid),
            "plot",
            action="complete",
            payload=answer,
            sessionid=first["command"]["sessionid"],
            timeout=30,
        )
        note = done.xml.find(f"{{{NS_COMMANDS}}}command/{{{NS_COMMANDS}}}note")
        assert note is not None
        assert note.get("type") == "info"
        message = await alice.wait_message(_from_hub, timeout=30)
        url = message["body"]
        assert message.xml.findtext(f"{{{NS_OOB}}}x/{{{NS_OOB}}}url") == url
        assert note.text == f"The chart is on its way as a message: {url}"
        status, kind, png = await asyncio.to_thread(fetch, url, upload_prosody.ca_file)
        assert (status, kind) == (200, "image/png")
        assert Image.open(io.BytesIO(png)).size[0] == WIDTH
    finally:
        await alice.disconnect_and_wait()
        await hub.stop()
