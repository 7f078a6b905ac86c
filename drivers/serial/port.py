"""Open a serial port for asyncio without blocking the loop; shared by the serial drivers.

pyserial opens and configures the port (a blocking system call, done in a worker
thread) and pyserial-asyncio-fast's transport then reads it from the event loop
(``add_reader`` on the file descriptor), so a driver never blocks.  Bytes are
handed to a callback as they arrive; the driver splits them into lines or
telegrams itself, which keeps over-long lines and binary noise bounded (a
``StreamReader.readline`` would raise on them instead).

pyserial's exceptions (``SerialException``, ``OSError``, ``ValueError`` for
settings a port refuses) become :class:`~hubd.errors.DriverUnavailable` here, at
the edge, so nothing above the drivers sees a library exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import termios
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, TypeVar

import serial
from pydantic import Field, field_validator
from serial_asyncio_fast import SerialTransport

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import Category, FieldSpec, FieldType, FieldValue
from hubd.errors import DriverUnavailable

_LOGGER = logging.getLogger(__name__)

Parity = Literal["none", "even", "odd", "mark", "space"]
ByteSize = Literal[5, 6, 7, 8]

_PARITY: dict[str, str] = {
    "none": serial.PARITY_NONE,
    "even": serial.PARITY_EVEN,
    "odd": serial.PARITY_ODD,
    "mark": serial.PARITY_MARK,
    "space": serial.PARITY_SPACE,
}

#: Bytes queued for the port beyond which a write is refused: a device that never reads
#: (flow control held, a wrong cable) must not make hubd's memory grow.
MAX_WRITE_BUFFER = 16 * 1024

OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 3.0

# What pyserial raises for a port that is absent, busy or refuses its settings: termios.error
# is no OSError, and ValueError means a setting the driver does not support.
_PORT_ERRORS = (serial.SerialException, OSError, ValueError, termios.error)


class SerialPortConfig(DriverConfig):
    """Keys every serial device has: where the port is and how it is set up."""

    port: str = Field(
        min_length=1,
        description="device path; prefer /dev/serial/by-id/..., stable across re-plugging",
    )
    baudrate: int = Field(default=9600, gt=0, le=4_000_000, description="bits per second")
    bytesize: ByteSize = Field(default=8, description="data bits: 5, 6, 7 or 8")
    parity: Parity = Field(default="none", description="none, even, odd, mark or space")
    # A float, not a Literal: typing has no float literals.
    stopbits: float = Field(default=1, description="1, 1.5 or 2")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("must be 1, 1.5 or 2")
        return value

    def claims(self) -> Iterable[str]:
        """A port can be opened by one device only."""
        return (f"serial:{self.port}",)

    def serial_options(self) -> dict[str, Any]:
        """The port settings as pyserial's keyword arguments."""
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": _PARITY[self.parity],
            "stopbits": self.stopbits,
        }


class _Receiver(asyncio.Protocol):
    """Pass received bytes on and remember why the connection ended."""

    def __init__(self, on_data: Callable[[bytes], None], lost: asyncio.Future[str | None]) -> None:
        self._on_data = on_data
        self._lost = lost

    def data_received(self, data: bytes) -> None:
        self._on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None if exc is None else str(exc))


class _ReadingTransport(SerialTransport):
    """pyserial-asyncio-fast's transport, reading what the loop says is there with one ``os.read``.

    Its ``_read_ready`` calls pyserial's ``read(1024)``, which with timeout 0
    polls the descriptor with ``select()``, reads, and polls again to see that
    nothing is left (its timeout loop): three system calls and a ``Timeout``
    object for each chunk, on the path of every reading, after the loop's own
    ``epoll`` already said the descriptor is readable.  This does what that
    read does for a POSIX port, in one call: nothing ready is no data, an
    error or an empty read (the device went away) closes the transport with
    pyserial's ``SerialException`` and its words, as before.
    """

    def _read_ready(self) -> None:
        port: Any = self._serial
        fd = getattr(port, "fd", None)
        if fd is None:  # not a POSIX port: pyserial's own read
            super()._read_ready()
            return
        try:
            data = os.read(fd, self._max_read_size)
        except (BlockingIOError, InterruptedError):
            return  # nothing after all (as pyserial's EAGAIN/EINTR): wait for the next event
        except OSError as err:
            self._close(exc=serial.SerialException(f"read failed: {err}"))
            return
        if not data:
            self._close(
                exc=serial.SerialException(
                    "device reports readiness to read but returned no data"
                    " (device disconnected or multiple access on port?)"
                )
            )
            return
        self._protocol.data_received(data)


class SerialPort:
    """An open port: received bytes go to a callback, ``write`` queues bytes to send."""

    def __init__(self, name: str, transport: SerialTransport, lost: asyncio.Future[str | None]):
        self.name = name
        self._transport = transport
        self.lost = lost
        """Resolves when the port is gone: to the error text (unplugged) or None (closed)."""

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the port; DriverUnavailable when it is closed or not draining."""
        if self._transport.is_closing() or self.lost.done():
            raise DriverUnavailable(f"{self.name} is closed")
        if self._transport.get_write_buffer_size() + len(data) > MAX_WRITE_BUFFER:
            raise DriverUnavailable(f"{self.name} is not accepting data (output buffer full)")
        self._transport.write(data)

    async def close(self) -> None:
        """Close the port and wait (bounded) until pyserial released it; idempotent."""
        if not self._transport.is_closing():
            # abort(), not close(): close() first drains the output (tcdrain), which can
            # hang on a port whose device is gone; unsent bytes are not worth that.
            self._transport.abort()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(self.lost)
        except TimeoutError:
            _LOGGER.warning("%s did not close within %s s", self.name, CLOSE_TIMEOUT)


async def open_port(config: SerialPortConfig, on_data: Callable[[bytes], None]) -> SerialPort:
    """Open ``config.port`` with its settings; ``on_data`` gets every chunk read.

    Raises DriverUnavailable if the port cannot be opened (absent, busy, refused).
    """
    loop = asyncio.get_running_loop()
    options = config.serial_options()
    # exclusive: a second program on the same port would steal bytes from us (and we from it).
    # timeout=0: the transport sets it anyway, and each setting is a tcsetattr.
    opener = functools.partial(
        serial.Serial, config.port, exclusive=True, timeout=0, write_timeout=0, **options
    )
    pending = loop.run_in_executor(None, opener)
    try:
        async with asyncio.timeout(OPEN_TIMEOUT):
            instance = await asyncio.shield(pending)
    except _PORT_ERRORS as err:
        raise DriverUnavailable(f"cannot open {config.port}: {err}") from err
    except (asyncio.CancelledError, TimeoutError) as err:
        # The thread cannot be stopped: close the port whenever it finishes opening,
        # so that a cancelled start() does not leak the file descriptor.
        pending.add_done_callback(_close_late)
        if isinstance(err, TimeoutError):
            why = f"no answer within {OPEN_TIMEOUT:g} s"
            raise DriverUnavailable(f"cannot open {config.port}: {why}") from None
        raise
    lost: asyncio.Future[str | None] = loop.create_future()
    try:
        # The transport reconfigures the port once more (timeouts), which a port may refuse.
        transport: SerialTransport = _ReadingTransport(loop, _Receiver(on_data, lost), instance)
    except _PORT_ERRORS as err:
        instance.close()
        raise DriverUnavailable(f"cannot set up {config.port} ({options}): {err}") from err
    _LOGGER.debug("opened %s (%s)", config.port, options)
    return SerialPort(config.port, transport, lost)


def _close_late(future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        return
    with contextlib.suppress(Exception):
        future.result().close()


ERRORS = FieldSpec(
    name="errors",
    type=FieldType.LONG,  # long, not int: a noisy line at 115200 baud could pass 2**31
    categories=frozenset({Category.STATUS}),
    description="garbage received since hubd started: lines or telegrams that were dropped",
)
LAST_ERROR = FieldSpec(
    name="last_error",
    type=FieldType.STRING,
    categories=frozenset({Category.STATUS}),
    description="why the last piece of garbage was dropped; empty when there was none",
)
STATUS_FIELDS = (ERRORS, LAST_ERROR)

#: Seconds between two publications of the status fields: line noise can produce thousands
#: of errors a second, and each publication reaches every subscriber.
STATUS_INTERVAL = 1.0

SerialConfigT = TypeVar("SerialConfigT", bound=SerialPortConfig)


class SerialDriver(Driver[SerialConfigT]):
    """What the serial drivers share: the port's life cycle, error counting, the latest values.

    A subclass turns received bytes into values in ``_on_data`` (called on the event-loop
    thread, never concurrently) and hands them to ``_publish``; garbage goes to ``_error``.
    There are no tasks: the transport calls back on the loop, the status is flushed by a
    timer handle, and losing the port is a callback on its ``lost`` future.
    """

    def __init__(self, config: SerialConfigT, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self._port: SerialPort | None = None
        # Counters live as long as the driver, across restarts after an unplug, so that
        # `errors` only ever grows while hubd runs.
        self._errors = 0
        self._last_error = ""
        self._status_dirty = False
        self._status_timer: asyncio.TimerHandle | None = None
        self._latest: dict[str, FieldValue] = {}
        self._failed = False
        self._silence_timer: asyncio.TimerHandle | None = None
        self._last_received = 0.0

    @property
    def silence_timeout(self) -> float | None:
        """Seconds without a byte after which the device counts as gone; None: never."""
        return None

    def _reset_input(self) -> None:
        """Forget partial input: the port is being (re)opened."""

    def _on_data(self, data: bytes) -> None:
        """Handle bytes read from the port."""
        raise NotImplementedError

    async def start(self) -> None:
        """Open the port; DriverUnavailable if it is absent or busy."""
        self._reset_input()
        self._failed = False
        port = await open_port(self.config, self._receive)
        self._port = port
        port.lost.add_done_callback(self._on_lost)
        self._publish_status()
        if self.silence_timeout is not None:
            loop = asyncio.get_running_loop()
            self._last_received = loop.time()
            self._silence_timer = loop.call_later(self.silence_timeout, self._check_silence)

    async def stop(self) -> None:
        """Close the port; idempotent."""
        port, self._port = self._port, None
        for timer in (self._status_timer, self._silence_timer):
            if timer is not None:
                timer.cancel()
        self._status_timer = self._silence_timer = None
        if port is not None:
            await port.close()

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """The latest values received (a pushing device has nothing to be asked)."""
        self._require_port()
        return self._snapshot(fields)

    def _require_port(self) -> SerialPort:
        if self._port is None or self._port.lost.done():
            raise DriverUnavailable(f"{self.config.port} is not open")
        return self._port

    def _snapshot(self, fields: frozenset[str]) -> list[FieldValue]:
        values = [*self._latest.values(), *self._status_values()]
        return [v for v in values if not fields or v.name in fields]

    def _check_silence(self) -> None:
        self._silence_timer = None
        timeout, port = self.silence_timeout, self._port
        if timeout is None or port is None or port.lost.done():
            return
        loop = asyncio.get_running_loop()
        # Re-armed here rather than on every chunk received: one timer per timeout.
        quiet = loop.time() - self._last_received
        if quiet < timeout:
            self._silence_timer = loop.call_later(timeout - quiet, self._check_silence)
            return
        self.ctx.set_available(False, f"{port.name}: nothing received for {timeout:g} s")

    def _receive(self, data: bytes) -> None:
        self._last_received = asyncio.get_running_loop().time()
        try:
            self._on_data(data)
        except Exception:
            # A bug in a parser must not end the connection: the transport would
            # otherwise hand the exception to the loop and keep calling us anyway.
            if not self._failed:
                self.ctx.logger.exception("cannot handle data from %s", self.config.port)
            self._failed = True
            self._error("internal", "an internal error; see hubd's log")

    def _on_lost(self, lost: asyncio.Future[str | None]) -> None:
        port = self._port
        if port is None or port.lost is not lost:
            return  # closed by stop(), or an earlier port
        why = lost.result() or "closed"
        # The supervisor logs the transition once, stops us and reopens with backoff.
        self.ctx.set_available(False, f"{port.name} unplugged or failed: {why}")

    def _publish(self, values: Sequence[FieldValue]) -> None:
        if values:
            for value in values:
                self._latest[value.name] = value
            self.ctx.publish(values)

    def _error(self, reason: str, detail: str, raw: bytes | None = None) -> None:
        """Count one piece of garbage; the node stays online."""
        self._errors += 1
        self._last_error = f"{reason}: {detail}"
        if raw is None:
            self.ctx.logger.debug("dropped: %s", self._last_error)
        else:
            self.ctx.logger.debug("dropped %r: %s", raw[:120], self._last_error)
        self._status_dirty = True
        if self._status_timer is None:
            self._publish_status()

    def _status_values(self) -> list[FieldValue]:
        return [
            self.ctx.value("errors", self._errors),
            self.ctx.value("last_error", self._last_error),
        ]

    def _publish_status(self) -> None:
        self._status_dirty = False
        self.ctx.publish(self._status_values())
        if self._port is not None:
            loop = asyncio.get_running_loop()
            self._status_timer = loop.call_later(STATUS_INTERVAL, self._status_tick)

    def _status_tick(self) -> None:
        self._status_timer = None
        if self._status_dirty:
            self._publish_status()
