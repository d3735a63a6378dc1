"""One connection to a bonded meter: GLS subscriptions, identity, clock, RACP procedures.

BLE callbacks only hand bytes on (into a queue); this module's loop parses them. A
measurement whose flags announce a context record is held until that context arrives (or
the next measurement, or the end of the procedure, shows it never will). A measurement that
does not decode is still a record (device.records): it is kept with its raw bytes, never
dropped, so the checkpoint may pass it.
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
from device.clock import ClockError, parse_current_time, parse_date_time
from device.gls import GlsError, RacpNumberOfRecords, RacpRequest, RacpResponse, decode_racp
from device.gls import uuids as gatt
from device.gls.measurement import sequence_number_of
from device.records import MeterRecord

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
class ClockReading:
    meter_time: datetime  # naive, the meter's wall clock
    received_at: datetime  # aware, the bridge's clock


class GlsSession:
    def __init__(self, client: BleakClient, events: asyncio.Queue[tuple[EventKind, bytes]]) -> None:
        self.client = client
        self._events = events
        self.rejected: list[tuple[bytes, str]] = []  # RACP values out of place, for the log
        # Context records whose measurement never came: kept, published as held records.
        self.stray_contexts: list[bytes] = []
        self.has_context = False

    def _push(self, kind: EventKind) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def handler(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            self._events.put_nowait((kind, bytes(data)))

        return handler

    async def _subscribe(self) -> None:
        context = gatt.uuid128(gatt.CONTEXT)
        self.has_context = self.client.services.get_characteristic(context) is not None
        await self.client.start_notify(gatt.uuid128(gatt.MEASUREMENT), self._push("measurement"))
        if self.has_context:
            await self.client.start_notify(context, self._push("context"))
        await self.client.start_notify(gatt.uuid128(gatt.RACP), self._push("racp"))

    async def identity(self, address: str) -> MeterInfo:
        async def text(uuid: str) -> str | None:
            if self.client.services.get_characteristic(uuid) is None:
                return None
            raw = await self.client.read_gatt_char(uuid)
            return bytes(raw).decode("utf-8", "replace").strip("\x00 ") or None

        serial = await text(gatt.uuid128(gatt.SERIAL_NUMBER)) or address  # no DIS: the address
        return MeterInfo(
            serial=serial,
            manufacturer=await text(gatt.uuid128(gatt.MANUFACTURER_NAME)),
            model=await text(gatt.uuid128(gatt.MODEL_NUMBER)),
        )

    async def read_clock(self) -> ClockReading | None:
        """The meter's clock, if it exposes one: the Current Time Service, or (as Roche meters
        do) a Date Time characteristic inside the Glucose Service."""
        services = self.client.services
        current_time = services.get_characteristic(gatt.uuid128(gatt.CURRENT_TIME))
        glucose = services.get_service(gatt.uuid128(gatt.GLUCOSE_SERVICE))
        date_time = (
            glucose.get_characteristic(gatt.uuid128(gatt.DATE_TIME))
            if glucose is not None
            else None
        )
        if current_time is not None:
            char, parse = current_time, parse_current_time
        elif date_time is not None:
            char, parse = date_time, parse_date_time
        else:
            return None
        raw = bytes(await self.client.read_gatt_char(char))
        received_at = datetime.now(UTC)
        try:
            return ClockReading(parse(raw), received_at)
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
            await self.client.write_gatt_char(
                gatt.uuid128(gatt.RACP), bytes(request), response=True
            )
        except BleakGATTProtocolError as exc:
            raise RacpRefused(int(exc.code)) from exc
        except BleakError as exc:
            if not self.client.is_connected:
                raise LinkLost(str(exc)) from exc
            raise
        pending: MeterRecord | None = None
        while True:
            try:
                kind, data = await asyncio.wait_for(self._events.get(), RACP_IDLE_TIMEOUT_S)
            except TimeoutError as exc:
                raise MeterStalled(f"no answer to {bytes(request).hex()}") from exc
            if kind == "disconnected":
                # A record still waiting for its context is not kept: the checkpoint stays
                # before it and the next sync asks for it again, context and all.
                raise LinkLost("the meter dropped the link")
            if kind == "measurement":
                if pending is not None:
                    sink.append(pending)  # its context never came
                pending = MeterRecord.decode(data)
                if pending.problem is not None:
                    log.warning("unreadable record %s: %s", data.hex(), pending.problem)
                if not pending.context_follows:
                    sink.append(pending)
                    pending = None
            elif kind == "context":
                if pending is not None and sequence_number_of(data) == pending.sequence_number:
                    sink.append(pending.with_context(data))
                    pending = None
                else:
                    log.warning("context without its measurement: %s", data.hex())
                    self.stray_contexts.append(data)
            else:
                try:
                    value = decode_racp(data)
                except GlsError as exc:
                    log.warning("malformed RACP indication %s: %s", data.hex(), exc)
                    self.rejected.append((data, f"racp: {exc}"))
                    continue
                if isinstance(value, RacpRequest):
                    self.rejected.append((data, "a request where a response belongs"))
                    continue
                if pending is not None:
                    sink.append(pending)
                return value


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
