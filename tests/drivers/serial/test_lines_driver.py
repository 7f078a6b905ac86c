"""``serial.lines`` against a simulated device on a pseudo-terminal.

The test plays the device on the pty's master side; the driver opens the slave through a
symlink, as it would open ``/dev/serial/by-id/...``. Unplugging closes the pty; replugging
makes a new one and re-points the symlink (a USB device re-enumerated under a new ttyUSBn).
pyserial discards unread input when it opens a port, so the device speaks only after
``start()`` returned (or after it received the poll command).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tty
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.serial.lines import LinesConfig, LinesDriver
from hubd.core.backoff import Backoff
from hubd.core.hub import Hub
from hubd.core.model import FieldType, FieldValue, NodeState
from hubd.core.node import Node
from hubd.core.supervisor import NodeSupervisor
from hubd.errors import ControlNotSupported, DriverUnavailable, InvalidValue
from hubd.testing.drivers import Recorder, make_context


class PtyDevice:
    """A serial device simulated on a pty; ``link`` plays /dev/serial/by-id/<device>."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.received = bytearray()
        self._arrived = asyncio.Event()
        self.on_line: Callable[[bytes], None] | None = None

    def plug(self) -> None:
        """Attach a new pty and point the link at it."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(self.link)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def unplug(self) -> None:
        """Close the pty: the driver's next read fails as with a pulled USB cable."""
        if self.master is not None:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
        if self.slave is not None:
            os.close(self.slave)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        assert self.master is not None
        os.write(self.master, data)

    def _readable(self) -> None:
        assert self.master is not None
        try:
            data = os.read(self.master, 4096)
        except OSError:
            return
        start = len(self.received)
        self.received += data
        self._arrived.set()
        if self.on_line is not None:
            for line in bytes(self.received[start:]).splitlines():
                self.on_line(line)

    async def wait_received(self, needle: bytes, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while needle not in self.received:
                self._arrived.clear()
                await self._arrived.wait()


async def wait_until(
    rec: Recorder,
    predicate: Callable[[], bool],
    timeout: float = 5.0,  # noqa: ASYNC109
) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            rec.changed.clear()
            await rec.changed.wait()


def has(rec: Recorder, name: str, value: object) -> Callable[[], bool]:
    return lambda: any(v.name == name and v.value == value for v in rec.values)


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[PtyDevice]:
    dev = PtyDevice(tmp_path / "usb-FTDI_FT232R_A1B2C3-if00-port0")
    dev.plug()
    yield dev
    dev.unplug()


def config(port: Path, **keys: Any) -> LinesConfig:
    return LinesConfig.model_validate(
        {"id": "weather", "driver": "serial.lines", "port": str(port), **keys}
    )


JSON_FIELDS = {
    "temp": {"unit": "°C"},
    "door": {"type": "boolean"},
    "state": {"type": "string"},
}


@pytest.fixture
async def started(device: PtyDevice) -> AsyncIterator[tuple[LinesDriver, Recorder, list[Any]]]:
    ctx, rec = make_context("weather")
    lost: list[Any] = []
    ctx = dataclasses.replace(ctx, set_available=lambda ok, why: lost.append((ok, why)))
    driver = LinesDriver(config(device.link, format="json", fields=JSON_FIELDS), ctx)
    await driver.start()
    yield driver, rec, lost
    await driver.stop()


# --- configuration ---------------------------------------------------------------------


def test_config_accepts_durations_and_serial_settings() -> None:
    cfg = config(
        Path("/dev/serial/by-id/x"),
        format="kv",
        baudrate=115200,
        parity="even",
        bytesize=7,
        stopbits=1.5,
        poll={"command": "READ", "interval": "5m", "timeout": "500ms"},
        fields={"t": {}},
    )
    assert cfg.poll is not None
    assert (cfg.poll.interval, cfg.poll.timeout) == (300.0, 0.5)
    assert cfg.serial_options()["parity"] == "E"
    assert config(Path("/x"), format="json", poll={"command": "R", "interval": 10}).poll


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"format": "regex"}, "needs a pattern"),
        ({"format": "regex", "pattern": "(x"}, "not a valid regular expression"),
        ({"format": "regex", "pattern": r"T=(?P<t>\S+)", "fields": {"h": {}}}, "no group"),
        ({"format": "json", "fields": {"errors": {}}}, "rename it"),
        ({"format": "json", "fields": {"a": {"rename": "b"}, "b": {}}}, "both named"),
        ({"format": "json", "fields": {"a": {"rename": "Bad Name"}}}, "pattern"),
        ({"format": "json", "fields": {"a": {"type": "boolean", "scale": 2}}}, "scale"),
        ({"format": "json", "encoding": "utf-16"}, "ASCII-compatible"),
        ({"format": "json", "encoding": "klingon"}, "unknown encoding"),
        ({"format": "json", "stopbits": 3}, "1, 1.5 or 2"),
        ({"format": "json", "parity": "weird"}, "parity"),
        ({"format": "json", "poll": {"command": "R", "interval": "soon"}}, "not a duration"),
        ({"format": "json", "poll": {"command": "R", "interval": 0}}, "greater than 0"),
        ({"format": "json", "poll": {"command": "A\nB", "interval": 1}}, "no line breaks"),
        ({"format": "xml"}, "format"),
        ({"format": "json", "colour": "red"}, "colour"),
    ],
)
def test_config_errors_name_the_problem(keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(Path("/dev/ttyUSB0"), **keys)


async def test_describe_declares_fields_send_and_status() -> None:
    fields = {"Temp C": {"unit": "°C"}, "n": {"type": "int", "rename": "count"}}
    driver = LinesDriver(config(Path("/x"), format="kv", fields=fields), make_context()[0])
    spec = driver.describe()
    assert [f.name for f in spec.fields] == ["temp_c", "count", "send", "errors", "last_error"]
    temp, count, send = spec.get("temp_c"), spec.get("count"), spec.get("send")
    assert temp is not None
    assert temp.unit == "°C"
    assert temp.type is FieldType.NUMERIC
    assert count is not None
    assert count.type is FieldType.LONG
    assert send is not None
    assert send.writable
    assert send.type is FieldType.STRING


# --- values, send, garbage -------------------------------------------------------------


async def test_values_arrive_with_their_decimals(
    device: PtyDevice, started: tuple[LinesDriver, Recorder, list[Any]]
) -> None:
    driver, rec, lost = started
    device.write(b'{"temp": 21.50, "door": true, "state": "idle", "other": 1}\r\n')
    await wait_until(rec, has(rec, "state", "idle"))
    temp = rec.latest("temp")
    assert temp is not None
    assert temp.value == Decimal("21.50")
    assert str(temp.value) == "21.50"
    door = rec.latest("door")
    assert door is not None
    assert door.value is True
    other = rec.latest("other")
    assert other is not None, "undeclared keys are published; the hub adds their fields"
    assert other.value == Decimal("1")
    read = {v.name: v.value for v in await driver.read(frozenset())}
    assert read["temp"] == Decimal("21.50")
    assert read["errors"] == 0
    assert read["last_error"] == ""
    assert {v.name for v in await driver.read(frozenset({"door"}))} == {"door"}
    assert lost == []


async def test_kv_and_regex_with_scale_offset_rename(device: PtyDevice) -> None:
    ctx, rec = make_context("meter")
    fields = {
        "t": {"scale": "0.1", "offset": "-40", "unit": "°C"},
        "n": {"type": "int", "rename": "count"},
    }
    driver = LinesDriver(config(device.link, format="kv", fields=fields), ctx)
    await driver.start()
    try:
        device.write(b"t=612 n=7 junk=1\n")
        await wait_until(rec, lambda: rec.latest("count") is not None)
        t = rec.latest("t")
        assert t is not None
        assert t.value == Decimal("21.2")
        assert rec.latest("count") == FieldValue("count", 7, rec.latest("count").timestamp)  # type: ignore[union-attr]
    finally:
        await driver.stop()

    ctx, rec = make_context("rx")
    pattern = r"T=(?P<temp>[-\d.]+)C H=(?P<humidity>\d+)%"
    cfg = config(
        device.link, format="regex", pattern=pattern, fields={"temp": {}, "humidity": {"unit": "%"}}
    )
    driver = LinesDriver(cfg, ctx)
    await driver.start()
    try:
        device.write(b"T=-3.25C H=81%\r")
        await wait_until(rec, lambda: rec.latest("humidity") is not None)
        assert [(v.name, v.value) for v in rec.values if v.name in ("temp", "humidity")] == [
            ("temp", Decimal("-3.25")),
            ("humidity", Decimal("81")),
        ]
    finally:
        await driver.stop()


async def test_send_writes_one_line(device: PtyDevice, tmp_path: Path) -> None:
    ctx, rec = make_context("relay")
    driver = LinesDriver(config(device.link, format="kv", line_ending="\r\n"), ctx)
    await driver.start()
    try:
        await driver.write("send", "SET 1 ON")
        await device.wait_received(b"SET 1 ON\r\n")
        sent = rec.latest("send")
        assert sent is not None
        assert sent.value == "SET 1 ON"
        with pytest.raises(InvalidValue):
            await driver.write("send", "A\nB")
        with pytest.raises(ControlNotSupported):
            await driver.write("errors", 0)
        assert bytes(device.received) == b"SET 1 ON\r\n"
    finally:
        await driver.stop()
    with pytest.raises(DriverUnavailable):
        await driver.write("send", "late")


async def test_garbage_is_counted_and_the_node_stays_up(
    device: PtyDevice, started: tuple[LinesDriver, Recorder, list[Any]]
) -> None:
    driver, rec, lost = started
    device.write(b"{not json\n")
    device.write(b"\x00\x01\xff\xfe\x13\x37\n")
    device.write(b'{"temp": ' + b"1" * 600 + b"}\n")  # longer than max_line_length (512)
    device.write(b'{"temp": "warm"}\n')  # a string in a numeric field
    device.write(b"[1, 2]\n")
    device.write(b'{"temp": 19.0}\n')
    await wait_until(rec, has(rec, "temp", Decimal("19.0")))
    read = {v.name: v.value for v in await driver.read(frozenset({"errors", "last_error"}))}
    assert read["errors"] == 5
    assert str(read["last_error"]).startswith("not_object")
    # Status is published at once for the first error, then at most once a second.
    await wait_until(rec, has(rec, "errors", 5), timeout=3)
    assert lost == [], "garbage never takes the node offline"


async def test_noise_without_line_breaks_stays_bounded(
    device: PtyDevice, started: tuple[LinesDriver, Recorder, list[Any]]
) -> None:
    driver, rec, _ = started
    device.write(bytes(range(256)).replace(b"\n", b"").replace(b"\r", b"") * 20)
    device.write(b'\n{"temp": 1.5}\n')
    await wait_until(rec, has(rec, "temp", Decimal("1.5")))
    errors = {v.name: v.value for v in await driver.read(frozenset({"errors"}))}["errors"]
    assert isinstance(errors, int)
    assert errors >= 1
    assert len(driver._buffer) == 0


# --- polling ---------------------------------------------------------------------------


async def test_poll_sends_the_command_and_takes_the_answer(device: PtyDevice) -> None:
    answers = iter([b"t=20.5\n", b"t=20.6\n", None, b"t=20.7\n"])

    def answer(line: bytes) -> None:
        if line == b"READ":
            reply = next(answers, None)
            if reply is not None:
                device.write(reply)

    device.on_line = answer
    ctx, rec = make_context("probe")
    cfg = config(
        device.link,
        format="kv",
        fields={"t": {}},
        poll={"command": "READ", "interval": 10, "timeout": 0.3},
    )
    driver = LinesDriver(cfg, ctx)
    assert driver.poll_interval == 10.0
    await driver.start()
    try:
        await wait_until(rec, has(rec, "t", Decimal("20.5")))  # the answer to start()'s poll
        values = {v.name: v.value for v in await driver.read(frozenset({"t"}))}
        assert values == {"t": Decimal("20.6")}
        assert rec.latest("t").value == Decimal("20.5"), "a read's answer is returned, not pushed"  # type: ignore[union-attr]
        values = {v.name: v.value for v in await driver.read(frozenset({"t", "last_error"}))}
        assert values["t"] == Decimal("20.6"), "no answer: the last value"
        assert str(values["last_error"]).startswith("no_answer")
        values = {v.name: v.value for v in await driver.read(frozenset({"t"}))}
        assert values == {"t": Decimal("20.7")}
        assert device.received.count(b"READ\n") == 4
    finally:
        await driver.stop()


async def test_a_silent_polled_device_becomes_unavailable(device: PtyDevice) -> None:
    ctx, _ = make_context("probe")
    cfg = config(
        device.link,
        format="kv",
        fields={"t": {}},
        poll={"command": "READ", "interval": 1, "timeout": 0.05},
    )
    driver = LinesDriver(cfg, ctx)
    await driver.start()
    try:
        await driver.read(frozenset())
        await driver.read(frozenset())
        with pytest.raises(DriverUnavailable, match="no answer to 'READ' 3 times"):
            await driver.read(frozenset())
    finally:
        await driver.stop()


# --- unplug and replug -----------------------------------------------------------------


async def test_unplug_reports_unavailable_once_and_replug_gives_fresh_values(
    device: PtyDevice,
) -> None:
    ctx, rec = make_context("weather")
    gone = asyncio.Event()
    reports: list[tuple[bool, str | None]] = []

    def set_available(ok: bool, why: str | None) -> None:
        reports.append((ok, why))
        gone.set()

    ctx = dataclasses.replace(ctx, set_available=set_available)
    driver = LinesDriver(config(device.link, format="json", fields=JSON_FIELDS), ctx)
    await driver.start()
    device.write(b'{"temp": 20.0}\n')
    await wait_until(rec, has(rec, "temp", Decimal("20.0")))

    device.unplug()
    async with asyncio.timeout(5):
        await gone.wait()
    assert len(reports) == 1
    assert reports[0][0] is False
    assert "unplugged" in str(reports[0][1])
    with pytest.raises(DriverUnavailable):
        await driver.read(frozenset())

    # What the supervisor does: stop, then start again with backoff until the port returns.
    await driver.stop()
    with pytest.raises(DriverUnavailable, match="cannot open"):
        await driver.start()
    await driver.stop()
    device.plug()  # a new tty behind the same by-id link
    await driver.start()
    try:
        device.write(b'{"temp": 22.5}\n')
        await wait_until(rec, has(rec, "temp", Decimal("22.5")))
        assert len(reports) == 1
    finally:
        await driver.stop()
        await driver.stop()  # idempotent


async def test_supervisor_takes_the_node_offline_and_back_online(device: PtyDevice) -> None:
    ctx, _ = make_context("weather")
    supervisor_slot: list[NodeSupervisor] = []
    hub = Hub(())
    ctx = dataclasses.replace(
        ctx,
        publish=lambda values: hub.ingest("weather", values),
        set_available=lambda ok, why: supervisor_slot[0].report_available(ok, why),
    )
    cfg = config(device.link, format="json", fields=JSON_FIELDS)
    node = Node.create(cfg, LinesDriver(cfg, ctx))
    hub.nodes["weather"] = node
    states: list[NodeState] = []
    changed = asyncio.Event()

    class Listener:
        def on_values(self, node: Node, values: list[FieldValue]) -> None:
            changed.set()

        def on_state(self, node: Node) -> None:
            states.append(node.state)
            changed.set()

    hub.add_listener(Listener())  # type: ignore[arg-type]
    supervisor = NodeSupervisor(hub, node, Backoff(base=0.02, cap=0.05))
    supervisor_slot.append(supervisor)

    async def until(predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not predicate():
                changed.clear()
                await changed.wait()

    def temp_is(value: str) -> Callable[[], bool]:
        return lambda: (v := node.cache.get("temp")) is not None and v.value == Decimal(value)

    task = asyncio.create_task(supervisor.run())
    try:
        await until(lambda: node.state is NodeState.ONLINE)
        device.write(b'{"temp": 20.0}\n')
        await until(temp_is("20.0"))
        device.unplug()
        await until(lambda: node.state is NodeState.OFFLINE)
        assert "unplugged" in str(node.state_message)
        device.plug()
        await until(lambda: node.state is NodeState.ONLINE)
        device.write(b'{"temp": 23.0}\n')
        await until(temp_is("23.0"))
        assert states.count(NodeState.OFFLINE) >= 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_busy_or_absent_port_is_unavailable(device: PtyDevice, tmp_path: Path) -> None:
    first = LinesDriver(config(device.link, format="json"), make_context("a")[0])
    second = LinesDriver(config(device.link, format="json"), make_context("b")[0])
    await first.start()
    try:
        with pytest.raises(DriverUnavailable, match="cannot open"):
            await second.start()
    finally:
        await second.stop()
        await first.stop()
    absent = LinesDriver(config(tmp_path / "nothing", format="json"), make_context("c")[0])
    with pytest.raises(DriverUnavailable, match="nothing"):
        await absent.start()
    await absent.stop()
