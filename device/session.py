"""One connection to a bonded meter: GLS subscriptions, identity, clock, RACP procedures.

BLE callbacks only hand bytes on (into a queue); this module's loop parses them. A
measurement whose flags announce a context record is held until that context arrives (or
the next measurement, or the end of the procedure, shows it never will).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError

from core.contract import MeterInfo
from device import ble
from device.clock import ClockError, parse_current_time
from device.gls import (
    GlsError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    decode_racp,
)

log = logging.getLogger(__name__)

# No record and no RACP response for this long: the meter stalled (asleep, out of range).
# Meters send a record every few ms once a report starts; 10 s is ample.
RACP_IDLE_TIMEOUT_S = 10.0
# How long to wait for a meter to accept a connection.
CONNECT_TIMEOUT_S = 15.0

EventKind = Literal["measurement", "context", "racp", "disconnected"]


class SessionError(Exception):
    """Root of what can go wrong talking to a meter."""


class LinkLost(SessionError):
    """The link dropped (the meter went to sleep, a strip was inserted, out of range)."""


class MeterStalled(SessionError):
    """The meter stopped answering in the middle of a procedure."""


class RacpRefused(SessionError):
    """The meter refused the RACP write with an ATT error (0x80 busy, 0x81 CCCDs)."""

    def __init__(self, att_error: int) -> None:
        super().__init__(f"RACP write refused with ATT error 0x{att_error:02X}")
        self.att_error = att_error


@dataclass(frozen=True)
class MeterRecord:
    measurement: GlucoseMeasurement
    context: GlucoseMeasurementContext | None = None

    @property
    def sequence_number(self) -> int:
        return self.measurement.sequence_number

    @property
    def stamp(self) -> str:
        """The raw time fields, to tell this record from another with the same number."""
        m = self.measurement
        return f"{m.base_time} {m.time_offset_minutes}"


@dataclass(frozen=True)
class ClockReading:
    meter_time: datetime  # naive, the meter's wall clock
    received_at: datetime  # aware, the bridge's clock


class GlsSession:
    def __init__(self, client: BleakClient, events: asyncio.Queue[tuple[EventKind, bytes]]) -> None:
        self.client = client
        self._events = events
        self.rejected: list[tuple[bytes, str]] = []  # malformed notifications, kept for the log
        self.has_context = False

    def _push(self, kind: EventKind) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def handler(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            self._events.put_nowait((kind, bytes(data)))

        return handler

    async def _subscribe(self) -> None:
        self.has_context = self.client.services.get_characteristic(ble.CONTEXT) is not None
        await self.client.start_notify(ble.MEASUREMENT, self._push("measurement"))
        if self.has_context:
            await self.client.start_notify(ble.CONTEXT, self._push("context"))
        await self.client.start_notify(ble.RACP, self._push("racp"))

    async def identity(self, address: str) -> MeterInfo:
        async def text(uuid: str) -> str | None:
            if self.client.services.get_characteristic(uuid) is None:
                return None
            raw = await self.client.read_gatt_char(uuid)
            return bytes(raw).decode("utf-8", "replace").strip("\x00 ") or None

        serial = await text(ble.SERIAL_NUMBER) or address  # no DIS: the address names it
        return MeterInfo(
            serial=serial,
            manufacturer=await text(ble.MANUFACTURER_NAME),
            model=await text(ble.MODEL_NUMBER),
        )

    async def read_clock(self) -> ClockReading | None:
        """The meter's clock through the Current Time Service, if it exposes one."""
        if self.client.services.get_characteristic(ble.CURRENT_TIME) is None:
            return None
        raw = bytes(await self.client.read_gatt_char(ble.CURRENT_TIME))
        received_at = datetime.now(UTC)
        try:
            return ClockReading(parse_current_time(raw), received_at)
        except ClockError as exc:
            log.warning("meter clock unreadable: %s (%s)", exc, raw.hex())
            return None

    async def request(
        self, request: RacpRequest, sink: list[MeterRecord]
    ) -> RacpResponse | RacpNumberOfRecords:
        """Run one RACP procedure; records it reports are appended to `sink` as they arrive.

        Raises LinkLost (what arrived stays in `sink`), MeterStalled or RacpRefused.
        """
        try:
            await self.client.write_gatt_char(ble.RACP, bytes(request), response=True)
        except BleakGATTProtocolError as exc:
            raise RacpRefused(int(exc.code)) from exc
        except BleakError as exc:
            if not self.client.is_connected:
                raise LinkLost(str(exc)) from exc
            raise
        pending: GlucoseMeasurement | None = None
        while True:
            try:
                kind, data = await asyncio.wait_for(self._events.get(), RACP_IDLE_TIMEOUT_S)
            except TimeoutError as exc:
                raise MeterStalled(f"no answer to {bytes(request).hex()}") from exc
            if kind == "disconnected":
                if pending is not None and not pending.context_follows:
                    sink.append(MeterRecord(pending))
                raise LinkLost("the meter dropped the link")
            try:
                if kind == "measurement":
                    if pending is not None:
                        sink.append(MeterRecord(pending))  # its context never came
                    pending = GlucoseMeasurement.from_bytes(data)
                    if not pending.context_follows:
                        sink.append(MeterRecord(pending))
                        pending = None
                elif kind == "context":
                    context = GlucoseMeasurementContext.from_bytes(data)
                    if pending is not None and context.sequence_number == pending.sequence_number:
                        sink.append(MeterRecord(pending, context))
                        pending = None
                    else:
                        self.rejected.append((data, "context without its measurement"))
                else:
                    value = decode_racp(data)
                    if isinstance(value, RacpRequest):
                        self.rejected.append((data, "a request where a response belongs"))
                        continue
                    if pending is not None:
                        sink.append(MeterRecord(pending))
                    return value
            except GlsError as exc:
                log.warning("malformed %s notification %s: %s", kind, data.hex(), exc)
                self.rejected.append((data, f"{kind}: {exc}"))


@asynccontextmanager
async def open_session(stack: ble.BleStack, device: BLEDevice) -> AsyncIterator[GlsSession]:
    """Connect (encrypting with the bond), subscribe, and disconnect on the way out."""
    events: asyncio.Queue[tuple[EventKind, bytes]] = asyncio.Queue()

    def disconnected(_client: BleakClient) -> None:
        events.put_nowait(("disconnected", b""))

    client = stack.client(device, disconnected, CONNECT_TIMEOUT_S)
    try:
        await client.connect()
    except (BleakError, TimeoutError) as exc:
        raise LinkLost(f"cannot connect to {device.address}: {exc}") from exc
    try:
        session = GlsSession(client, events)
        try:
            await session._subscribe()
        except BleakError as exc:
            raise LinkLost(f"{device.address}: {exc}") from exc
        yield session
    finally:
        if client.is_connected:
            await client.disconnect()
