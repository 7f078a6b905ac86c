"""``ble.gatt``: a connected BLE device whose GATT characteristics are fields.

The device is found through the shared scanner (a second scanner would
compete with it on BlueZ), then connected with bleak-retry-connector, which
retries BlueZ's transient failures.  A lost connection makes the node offline
and the supervisor reconnects with backoff.  An adapter has few connection
slots: at most :data:`MAX_CONNECTIONS` devices are connected at a time per
adapter, and a device beyond that stays offline saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hubd.core.driver import Driver, DriverConfig, DriverContext
from hubd.core.model import FIELD_NAME, FieldValue, NodeSpec, Value
from hubd.errors import DriverUnavailable, ReadoutError

from .advertisement import Advertisement, normalize_address
from .gatt_codec import Codec, Format, full_uuid
from .scanner import shared_scanner

if TYPE_CHECKING:
    from collections.abc import Callable

    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic

    _NotifyCallback = Callable[[BleakGATTCharacteristic, bytearray], None]

__all__ = ["MAX_CONNECTIONS", "CharacteristicConfig", "ConnectionSlots", "GattConfig", "GattDriver"]

MAX_CONNECTIONS: Final = 3
"""Connections per adapter: the Pi's controller manages a few; scanning needs air time too."""

IO_TIMEOUT: Final = 10.0
DISCONNECT_TIMEOUT: Final = 5.0


class CharacteristicConfig(BaseModel):
    """One characteristic of a ``ble.gatt`` device, exposed as one field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="the field name, lower_snake")
    uuid: str = Field(description="the characteristic: 2a19, or a 128-bit UUID")
    format: Format = Field(default="bytes", description="the value codec")
    byteorder: Literal["little", "big"] = "little"
    scale: Decimal = Field(default=Decimal(1), description="value = integer x scale")
    unit: str | None = None
    read: bool = Field(default=True, description="read it at connect and on readout")
    notify: bool = Field(default=False, description="subscribe to its notifications")
    write: bool = Field(default=False, description="the field is writable (control)")

    @field_validator("field")
    @classmethod
    def _field(cls, value: str) -> str:
        if not FIELD_NAME.match(value) or value in ("online", "rssi"):
            raise ValueError(f"must be lower_snake and not online/rssi: {value!r}")
        return value

    @field_validator("uuid")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return full_uuid(value)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or value == 0:
            raise ValueError("must be a non-zero number")
        return value

    @model_validator(mode="after")
    def _some_access(self) -> CharacteristicConfig:
        if not (self.read or self.notify or self.write):
            raise ValueError(f"{self.field}: read, notify and write are all false")
        return self

    @property
    def codec(self) -> Codec:
        """The codec of this characteristic's value."""
        return Codec(self.format, self.byteorder, self.scale)


class GattConfig(DriverConfig):
    """Keys of a ``ble.gatt`` device."""

    address: str = Field(description="the device's Bluetooth address, AA:BB:CC:DD:EE:FF")
    characteristics: tuple[CharacteristicConfig, ...] = Field(
        min_length=1, description="field, uuid, format, scale, unit, read/notify/write"
    )
    poll_interval: float | None = Field(
        default=None, ge=1, description="seconds between reads of the readable characteristics"
    )
    connect_timeout: float = Field(
        default=20.0, ge=1, le=25, description="seconds to find the device and connect"
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return normalize_address(value)

    @field_validator("characteristics")
    @classmethod
    def _unique(cls, value: tuple[CharacteristicConfig, ...]) -> tuple[CharacteristicConfig, ...]:
        names = [c.field for c in value]
        doubles = sorted({n for n in names if names.count(n) > 1})
        if doubles:
            raise ValueError(f"field names used twice: {', '.join(doubles)}")
        return value

    def claims(self) -> Sequence[str]:
        """One node per device address."""
        return (f"ble:{self.address}",)


class ConnectionSlots:
    """Counts the connections of one adapter; never waits (a full adapter is reported)."""

    def __init__(self, capacity: int = MAX_CONNECTIONS) -> None:
        self.capacity = capacity
        self.used = 0

    def acquire(self) -> bool:
        """Take a slot if one is free."""
        if self.used >= self.capacity:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        """Give a slot back."""
        self.used = max(0, self.used - 1)


class GattDriver(Driver[GattConfig]):
    """A connected BLE device: each configured GATT characteristic is one field.

    Options: ``address``; ``characteristics``, a list of ``field`` (name),
    ``uuid`` (``2a19`` or 128 bits), ``format`` (``uint8``/``int8`` ...
    ``uint32``/``int32``, ``uint24``/``int24``, ``float32``, ``float64``,
    ``bool``, ``utf8``, ``bytes`` as hex; default bytes), ``byteorder``
    (little), ``scale`` (numeric value = integer x scale), ``unit``, and
    ``read`` (default true), ``notify``, ``write`` (the field is writable);
    ``poll_interval`` (seconds, re-read the readable characteristics);
    ``connect_timeout`` (default 20 s).

    The device must advertise to be found.  The node is online while
    connected; on a lost connection it reconnects with backoff.  At most
    three devices are connected per adapter.  Needs the radio (not
    available with ``ble.replay``).
    """

    kind = "ble.gatt"
    config_model = GattConfig

    def __init__(self, config: GattConfig, ctx: DriverContext) -> None:
        super().__init__(config, ctx)
        self.poll_interval = config.poll_interval
        self._chars = {c.field: c for c in config.characteristics}
        self._spec = NodeSpec(
            fields=tuple(
                c.codec.field_spec(c.field, unit=c.unit, writable=c.write)
                for c in config.characteristics
            )
        )
        self._client: BleakClient | None = None
        self._slots: ConnectionSlots | None = None
        self._values: dict[str, FieldValue] = {}
        self._stopping = False
        self._warned: set[str] = set()

    def describe(self) -> NodeSpec:
        """One field per configured characteristic."""
        return self._spec

    async def start(self) -> None:
        """Find the device, take a connection slot, connect, subscribe, read once."""
        ble = self.ctx.settings.ble
        if ble.replay is not None:
            raise DriverUnavailable(
                "ble.gatt needs the radio; ble.replay only plays advertisements"
            )
        self._stopping = False
        device = await self._find_device()
        slots = self.ctx.resources.get_or_create(f"ble.slots:{ble.adapter}", ConnectionSlots)
        if not slots.acquire():
            raise DriverUnavailable(
                f"all {slots.capacity} connection slots of {ble.adapter} are in use"
            )
        self._slots = slots
        await self._connect(device)

    async def _find_device(self) -> object:
        scanner = shared_scanner(self.ctx)
        found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

        def on_advert(advert: Advertisement) -> None:
            if advert.device is not None and not found.done():
                found.set_result(advert)

        subscription = await scanner.subscribe(self.config.address, on_advert)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                advert = await found
        except TimeoutError:
            raise DriverUnavailable(
                f"not advertising: not seen within {self.config.connect_timeout:g} s"
            ) from None
        finally:
            await scanner.unsubscribe(subscription)
        return advert.device

    async def _connect(self, device: object) -> None:
        from bleak import BleakClient
        from bleak.exc import BleakError
        from bleak_retry_connector import establish_connection

        try:
            async with asyncio.timeout(self.config.connect_timeout):
                client = await establish_connection(
                    BleakClient,
                    device,  # type: ignore[arg-type]
                    self.ctx.node_id,
                    disconnected_callback=self._on_disconnect,
                    max_attempts=2,
                )
        except (BleakError, TimeoutError, OSError) as err:
            raise DriverUnavailable(f"cannot connect: {err or type(err).__name__}") from err
        self._client = client
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                for char in self._chars.values():
                    if char.notify:
                        await client.start_notify(char.uuid, self._notifier(char))
            values = await self._read_chars(frozenset())
        except (BleakError, TimeoutError, OSError) as err:
            raise DriverUnavailable(f"connected, but setup failed: {err}") from err
        self.ctx.publish(values)

    def _notifier(self, char: CharacteristicConfig) -> _NotifyCallback:
        def on_notify(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
            value = self._decode(char, bytes(data))
            if value is not None:
                self.ctx.publish([value])

        return on_notify

    def _on_disconnect(self, _client: BleakClient) -> None:
        if not self._stopping:
            self.ctx.set_available(False, "disconnected")

    def _decode(self, char: CharacteristicConfig, data: bytes) -> FieldValue | None:
        try:
            value = char.codec.decode(data)
        except ValueError as err:
            message = f"{char.field}: {err}"
            if message not in self._warned:
                self._warned.add(message)
                self.ctx.logger.warning("cannot decode %s", message)
            return None
        field_value = self.ctx.value(char.field, value)
        self._values[char.field] = field_value
        return field_value

    async def _read_chars(self, fields: frozenset[str]) -> list[FieldValue]:
        client = self._connected()
        values: list[FieldValue] = []
        for char in self._chars.values():
            if fields and char.field not in fields:
                continue
            if char.read:
                data = await client.read_gatt_char(char.uuid)
                value = self._decode(char, bytes(data))
                if value is not None:
                    values.append(value)
            elif char.field in self._values:
                values.append(self._values[char.field])
        return values

    def _connected(self) -> BleakClient:
        client = self._client
        if client is None or not client.is_connected:
            raise DriverUnavailable("not connected")
        return client

    async def read(self, fields: frozenset[str]) -> Sequence[FieldValue]:
        """Read the readable characteristics; notify-only ones give their last value."""
        from bleak.exc import BleakError

        try:
            async with asyncio.timeout(IO_TIMEOUT):
                return await self._read_chars(fields)
        except (BleakError, OSError) as err:
            raise ReadoutError(f"read failed: {err}") from err

    async def write(self, field: str, value: Value) -> None:
        """Encode and write the value (with response), then publish it."""
        from bleak.exc import BleakError

        char = self._chars[field]
        data = char.codec.encode(value)
        client = self._connected()
        try:
            async with asyncio.timeout(IO_TIMEOUT):
                await client.write_gatt_char(char.uuid, data, response=True)
        except (BleakError, OSError) as err:
            raise DriverUnavailable(f"write failed: {err}") from err
        self._values[field] = self.ctx.value(field, value)
        self.ctx.publish([self._values[field]])

    async def stop(self) -> None:
        """Disconnect and give the slot back."""
        self._stopping = True
        client, self._client = self._client, None
        slots, self._slots = self._slots, None
        try:
            if client is not None:
                from bleak.exc import BleakError

                try:
                    async with asyncio.timeout(DISCONNECT_TIMEOUT):
                        await client.disconnect()
                except (BleakError, OSError, TimeoutError) as err:
                    self.ctx.logger.debug("disconnect: %r", err)
        finally:
            if slots is not None:
                slots.release()
