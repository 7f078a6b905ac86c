"""``serial.lines``: a device that speaks one line of text per reading (JSON, key=value, regex)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from drivers.serial.lines_protocol import (
    DEFAULT_MAX_LINE_LENGTH,
    FieldOverride,
    LineBuffer,
    LineParseError,
    LineParser,
    normalize_key,
)
from drivers.serial.port import STATUS_FIELDS, SerialDriver, SerialPortConfig
from hubd.core.driver import DriverContext
from hubd.core.model import FIELD_NAME, Category, FieldSpec, FieldType, FieldValue, NodeSpec, Value
from hubd.errors import ControlNotSupported, DriverUnavailable, InvalidValue

SEND = FieldSpec(
    name="send",
    type=FieldType.STRING,
    categories=frozenset({Category.STATUS}),
    writable=True,
    description="a line to write to the device (the line ending is added); shows the last one",
)
RESERVED = frozenset({"send", "online", *(spec.name for spec in STATUS_FIELDS)})

_TYPES: dict[str, FieldType] = {
    "numeric": FieldType.NUMERIC,
    "boolean": FieldType.BOOLEAN,
    # 64-bit: counters (energy in Wh, uptime in ms) pass 2**31 in real devices.
    "int": FieldType.LONG,
    "string": FieldType.STRING,
}

_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

#: Unanswered polls in a row after which the device counts as gone (node offline, reopened).
MAX_MISSED_POLLS = 3


def parse_seconds(raw: object) -> object:
    """Accept seconds or text: ``10``, ``2.5``, ``"10s"``, ``"500ms"``, ``"5m"``, ``"1h"``."""
    if isinstance(raw, str):
        match = _DURATION.fullmatch(raw)
        if match is None:
            raise ValueError(f"{raw!r} is not a duration: write seconds, or e.g. 10s, 500ms, 5m")
        return float(match[1]) * _UNIT_SECONDS[match[2]]
    return raw


class FieldConfig(BaseModel):
    """How one key of the device's lines becomes a field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["numeric", "int", "boolean", "string"] = Field(
        default="numeric", description="numeric (default), int, boolean or string"
    )
    unit: str | None = Field(default=None, max_length=32, description="e.g. °C, %, hPa")
    scale: Decimal | None = Field(default=None, description="value * scale + offset")
    offset: Decimal | None = Field(default=None, description="value * scale + offset")
    rename: str | None = Field(default=None, pattern=FIELD_NAME.pattern, description="field name")

    def override(self) -> FieldOverride:
        """The parser's view of this field."""
        return FieldOverride(
            type=self.type, unit=self.unit, scale=self.scale, offset=self.offset, rename=self.rename
        )


class PollConfig(BaseModel):
    """Ask a request/response device for a reading every ``interval``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str = Field(min_length=1, max_length=256, description="the line to send, e.g. READ")
    interval: float = Field(gt=0, description="seconds between requests (10, 10s, 5m)")
    timeout: float = Field(default=2.0, gt=0, le=60, description="seconds to wait for the answer")

    @field_validator("interval", "timeout", mode="before")
    @classmethod
    def _seconds(cls, raw: object) -> object:
        return parse_seconds(raw)

    @field_validator("command")
    @classmethod
    def _one_line(cls, command: str) -> str:
        if "\r" in command or "\n" in command:
            raise ValueError("the command is one line: no line breaks (line_ending is added)")
        return command


class LinesConfig(SerialPortConfig):
    """Keys of a ``serial.lines`` device."""

    format: Literal["json", "kv", "regex"] = Field(
        description="json, kv (key=value pairs) or regex (with named groups)"
    )
    pattern: str | None = Field(default=None, description="format regex: named groups = fields")
    fields: dict[str, FieldConfig] = Field(
        default_factory=dict, description="the keys to expose: {key: {type, unit, scale, ...}}"
    )
    line_ending: Literal["\n", "\r\n", "\r"] = Field(
        default="\n", description='added to each line sent: "\\n", "\\r\\n" or "\\r"'
    )
    encoding: str = Field(default="utf-8", description="text encoding (ASCII-compatible)")
    max_line_length: int = Field(
        default=DEFAULT_MAX_LINE_LENGTH, ge=16, le=65536, description="longer lines are dropped"
    )
    poll: PollConfig | None = Field(
        default=None, description="{command, interval, timeout} for request/response devices"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        try:
            "\n".encode(self.encoding)
            ascii_compatible = "A\r\n".encode(self.encoding) == b"A\r\n"
        except LookupError:
            raise ValueError(f"encoding: unknown encoding {self.encoding!r}") from None
        if not ascii_compatible:
            raise ValueError(f"encoding: {self.encoding} is not ASCII-compatible (like utf-8)")
        LineParser(  # raises ValueError naming what is wrong with format/pattern/fields
            self.format,
            pattern=self.pattern,
            fields={key: field.override() for key, field in self.fields.items()},
            max_line_length=self.max_line_length,
            encoding=self.encoding,
        )
        names: dict[str, str] = {}
        for key in self.fields:
            name = self.field_name(key)
            if name in RESERVED:
                raise ValueError(f"fields: {key!r} would be the field {name!r}: rename it")
            if name in names:
                raise ValueError(f"fields: {names[name]!r} and {key!r} are both named {name!r}")
            names[name] = key
        if self.format == "regex" and self.pattern is not None:
            groups = {normalize_key(group) for group in re.compile(self.pattern).groupindex}
            missing = [key for key in self.fields if normalize_key(key) not in groups]
            if missing:
                raise ValueError(f"fields: the pattern has no group named {missing[0]!r}")
        return self

    def field_name(self, key: str) -> str:
        """The public name of the field made of line key ``key``."""
        rename = self.fields[key].rename
        return rename if rename is not None else normalize_key(key)


class LinesDriver(SerialDriver[LinesConfig]):
    """A line-oriented serial device: each line it sends is one set of readings.

    Options: ``port`` (prefer a stable ``/dev/serial/by-id/...`` path: it survives
    re-plugging), ``baudrate`` (9600), ``bytesize`` (8), ``parity`` (none | even | odd |
    mark | space), ``stopbits`` (1 | 1.5 | 2), ``format``: ``json`` (one object per
    line, nested keys joined with ``_``), ``kv`` (``t=21.5 rh=40``) or ``regex`` with
    ``pattern`` (named groups, matched against the whole line), ``encoding`` (utf-8),
    ``line_ending`` for lines sent (``"\\n"``; received lines may end in CR, LF or
    both), ``max_line_length`` (512 bytes; longer lines are dropped and counted), and
    ``poll``.

    Fields: one per key of the device's lines, in lower_snake (numbers numeric,
    true/false boolean, the rest string); a key first seen after start becomes a
    field then (at most 64 per node).  Keys declared under ``fields:`` exist from
    the start and may set ``type`` (``numeric``, the
    default, ``int``, ``boolean`` or ``string``), ``unit``, ``scale`` and ``offset``
    (``value * scale + offset``, exact decimals) and ``rename`` (the field name;
    otherwise the key in lower_snake).  A value that does not fit its type makes the
    line garbage.  Numbers keep the decimals the device sent.  ``send`` (string,
    writable) writes one line to the device.  Status fields: ``errors`` (garbage lines
    dropped: invalid, binary noise, over-long, wrong types; and unanswered polls) and
    ``last_error`` (why the last one was dropped).

    Push: values are published as lines arrive.  Poll: with ``poll: {command: READ,
    interval: 10s}`` hubd sends the command at start and every ``interval`` (and on
    each readout) and takes the next line as the answer (``timeout``, default 2 s);
    three unanswered polls in a row make the node offline until the device answers
    again.  Unplugging the device makes the node offline; hubd reopens the port with
    backoff until it returns.
    """

    kind = "serial.lines"
    config_model = LinesConfig
    static_fields = (SEND, *STATUS_FIELDS)
    dynamic_fields = True

    def __init__(self, config: LinesConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._parser = LineParser(
            config.format,
            pattern=config.pattern,
            fields={key: field.override() for key, field in config.fields.items()},
            max_line_length=config.max_line_length,
            encoding=config.encoding,
        )
        self._buffer = LineBuffer(config.max_line_length)
        self._specs = {spec.name: spec for spec in self._data_fields()}
        self._answer: asyncio.Future[list[FieldValue] | None] | None = None
        self._exchange = asyncio.Lock()
        self._missed = 0
        if config.poll is not None:
            self.poll_interval = config.poll.interval
            self.read_timeout = config.poll.timeout + 2.0

    def _data_fields(self) -> list[FieldSpec]:
        return [
            FieldSpec(name=self.config.field_name(key), type=_TYPES[field.type], unit=field.unit)
            for key, field in self.config.fields.items()
        ]

    def describe(self) -> NodeSpec:
        """The declared fields, ``send``, ``errors`` and ``last_error``."""
        return NodeSpec(fields=(*self._specs.values(), SEND, *STATUS_FIELDS))

    def _reset_input(self) -> None:
        self._buffer.clear()
        self._missed = 0

    async def start(self) -> None:
        """Open the port; a polled device is asked for its first reading at once."""
        await super().start()
        if self.config.poll is not None:
            self._send_line(self.config.poll.command)

    async def stop(self) -> None:
        """Close the port; a poll waiting for its answer gets none."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(None)
        await super().stop()

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The latest values; a polled device is asked first and its answer returned."""
        poll = self.config.poll
        if poll is None:
            return await super().read(fields)
        async with self._exchange:
            self._require_port()
            answer: asyncio.Future[list[FieldValue] | None]
            answer = asyncio.get_running_loop().create_future()
            self._answer = answer
            try:
                self._send_line(poll.command)
                async with asyncio.timeout(poll.timeout):
                    values = await answer
            except TimeoutError:
                self._missed += 1
                self._error("no_answer", f"no answer to {poll.command!r} within {poll.timeout:g} s")
                if self._missed >= MAX_MISSED_POLLS:
                    raise DriverUnavailable(
                        f"{self.config.port}: no answer to {poll.command!r}"
                        f" {self._missed} times in a row"
                    ) from None
                return self._snapshot(fields)
            finally:
                self._answer = None
        self._missed = 0
        if values is not None:  # None: the answer was garbage, already counted
            for value in values:
                self._latest[value.name] = value
        return self._snapshot(fields)

    async def write(self, field: str, value: Value) -> None:
        """Write ``send`` to the device as one line."""
        if field != "send":
            raise ControlNotSupported(f"{field} cannot be written", field=field)
        text = str(value)
        if "\r" in text or "\n" in text:
            raise InvalidValue("send: one line only, without line breaks", field=field)
        async with self._exchange:  # never between a poll and its answer
            self._send_line(text)
        self._publish([self.ctx.value("send", text)])

    def _send_line(self, text: str) -> None:
        try:
            data = (text + self.config.line_ending).encode(self.config.encoding)
        except UnicodeEncodeError as err:
            raise InvalidValue(f"send: cannot be written in {err.encoding}", field="send") from None
        self._require_port().write(data)
        self.ctx.logger.debug("sent %r", data)

    def _on_data(self, data: bytes) -> None:
        overlong = self._buffer.overlong
        lines = self._buffer.feed(data)
        for _ in range(self._buffer.overlong - overlong):
            self._error("too_long", f"a line longer than {self.config.max_line_length} bytes")
            self._answered(None)
        for line in lines:
            self._line(line)

    def _line(self, line: bytes) -> None:
        try:
            readings = self._parser.parse(line)
        except LineParseError as err:
            self._error(err.reason, err.detail, line)
            self._answered(None)
            return
        values: list[FieldValue] = []
        for reading in readings:
            spec = self._specs.get(reading.name)
            if spec is None:
                # Undeclared: the hub adds the field, typed by this first value.
                values.append(self.ctx.value(reading.name, reading.value))
                continue
            try:
                value = spec.coerce(reading.value)
            except InvalidValue as err:  # e.g. an int beyond 64 bits
                self._error("bad_value", str(err), line)
                continue
            values.append(self.ctx.value(spec.name, value))
        self.ctx.logger.debug("line %r: %d value(s)", line[:120], len(values))
        if not self._answered(values):
            self._publish(values)

    def _answered(self, values: list[FieldValue] | None) -> bool:
        """Hand a line to a waiting poll; True if one took it (it publishes them itself)."""
        answer = self._answer
        if answer is None or answer.done():
            return False
        answer.set_result(values)
        return True
