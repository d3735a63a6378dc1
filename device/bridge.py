"""The running bridge: find bonded meters by the Glucose Service, sync each one
incrementally, commit every sync to the outbox before anything is published.

A sync that the link interrupts keeps what arrived (committed with its checkpoint) and is
retried with backoff; the next attempt resumes after the last record held.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bleak.backends.device import BLEDevice

from core.backoff import backoff_delay
from core.contract import HeldRecord, MeterInfo, ReadingsBatch, WireReading
from device import ble
from device.clock import ClockCorrection
from device.courier import Courier
from device.gls import uuids as gatt
from device.meter_ranges import measuring_range
from device.readings import convert, held_context
from device.records import MeterRecord
from device.session import SessionError, open_session
from device.store import BridgeStore
from device.sync import Sync, checkpoint_after

log = logging.getLogger(__name__)

# How long one scan listens for meters. Meters advertise every 0.1-1 s for a minute or so
# after a test; a few seconds hears every awake meter in the room.
SCAN_S = 5.0
# Between two rounds of scanning and syncing when the bridge runs unattended.
SYNC_INTERVAL_S = 60.0
# Attempts per meter per round: a strip insertion or a walk out of range drops the link;
# the meter is usually back within seconds.
MAX_SYNC_ATTEMPTS = 5
SYNC_RETRY_BASE_S = 0.2
SYNC_RETRY_CAP_S = 5.0
# Readings per MQTT message: a whole meter (1,000 records) is a few messages of a few
# dozen kB each, well under broker limits and ingest's 5,000-reading envelope limit.
MAX_BATCH_READINGS = 250


@dataclass(frozen=True)
class BridgeConfig:
    bridge_id: str
    zone: ZoneInfo  # the home's time zone: what meter wall clocks are read in
    scan_s: float = SCAN_S
    sync_interval_s: float = SYNC_INTERVAL_S
    max_batch_readings: int = MAX_BATCH_READINGS
    max_sync_attempts: int = MAX_SYNC_ATTEMPTS


@dataclass
class SyncReport:
    address: str
    serial: str | None = None
    records: int = 0
    readings: int = 0
    # Records kept as held records (no reading could be made of them), with the reason.
    held: list[str] = field(default_factory=list)
    # RACP values out of place (a request where a response belongs), for the log.
    rejected: list[str] = field(default_factory=list)
    batches: int = 0
    attempts: int = 0
    complete: bool = False
    clock_skew_s: int | None = None
    error: str | None = None


class Bridge:
    def __init__(
        self,
        config: BridgeConfig,
        store: BridgeStore,
        stack: ble.BleStack,
        *,
        courier: Courier | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.stack = stack
        self.courier = courier
        # Runs right after a sync is committed, before the courier hears of it (tests use it
        # to kill the process exactly there).
        self.after_commit = after_commit

    async def scan(self) -> list[BLEDevice]:
        """Bonded meters advertising the Glucose Service now."""
        bonded = self.store.bonded()
        async with self.stack.scanner([gatt.uuid128(gatt.GLUCOSE_SERVICE)]) as scanner:
            await asyncio.sleep(self.config.scan_s)
        return [d for d in scanner.discovered_devices if d.address in bonded]

    async def sync_all(self) -> list[SyncReport]:
        return [await self.sync_meter(device) for device in await self.scan()]

    async def sync_meter(self, device: BLEDevice) -> SyncReport:
        report = SyncReport(device.address)
        for attempt in range(self.config.max_sync_attempts):
            report.attempts = attempt + 1
            try:
                await self._attempt(device, report)
            except SessionError as exc:
                report.error = f"{type(exc).__name__}: {exc}"
                log.info("sync %s attempt %d: %s", device.address, attempt + 1, report.error)
                await asyncio.sleep(
                    backoff_delay(attempt, base_s=SYNC_RETRY_BASE_S, cap_s=SYNC_RETRY_CAP_S)
                )
                continue
            report.complete, report.error = True, None
            break
        return report

    async def _attempt(self, device: BLEDevice, report: SyncReport) -> None:
        records: list[MeterRecord] = []
        stray: list[bytes] = []
        meter: MeterInfo | None = None
        correction = ClockCorrection(self.config.zone)
        sync: Sync | None = None
        try:
            async with open_session(self.stack, device) as session:
                meter = await session.identity(device.address)
                report.serial = meter.serial
                clock = await session.read_clock()
                if clock is not None:
                    correction = ClockCorrection.measure(
                        clock.meter_time, clock.received_at, self.config.zone
                    )
                    skew = correction.skew.total_seconds() if correction.skew else 0
                    report.clock_skew_s = int(skew)
                checkpoint = self.store.checkpoint(device.address)
                if checkpoint is not None and checkpoint.serial != meter.serial:
                    log.warning("%s is another meter now (%s)", device.address, meter.serial)
                    checkpoint = None
                sync = Sync(session, checkpoint)
                try:
                    await sync.fetch_new(records)
                finally:
                    stray = session.stray_contexts
                    report.rejected += [f"{data.hex()}: {why}" for data, why in session.rejected]
        finally:
            # What arrived before a failure is kept: committed with its checkpoint.
            if meter is not None and sync is not None:
                unsupported = frozenset(sync.unsupported)
                if records or stray:
                    self._commit(device.address, meter, records, stray, correction, report, sync)
                if checkpoint is not None and unsupported != checkpoint.unsupported:
                    self.store.remember_unsupported(device.address, unsupported)

    def _commit(
        self,
        address: str,
        meter: MeterInfo,
        records: list[MeterRecord],
        stray: list[bytes],
        correction: ClockCorrection,
        report: SyncReport,
        sync: Sync,
    ) -> None:
        converted = convert(records, correction, measuring_range(meter))
        held = converted.held + [held_context(raw) for raw in stray]
        for record in held:
            log.warning(
                "meter %s record %s held: %s", meter.serial, record.sequence_number, record.detail
            )
        items: list[WireReading | HeldRecord] = [*converted.readings, *held]
        size = self.config.max_batch_readings
        batches = [
            ReadingsBatch(
                bridge_id=self.config.bridge_id,
                meter=meter,
                readings=[i for i in chunk if isinstance(i, WireReading)],
                held=[i for i in chunk if isinstance(i, HeldRecord)],
            )
            for chunk in (items[i : i + size] for i in range(0, len(items), size))
        ]
        checkpoint = checkpoint_after(meter.serial, records, frozenset(sync.unsupported))
        report.batches += self.store.commit_sync(address, batches, checkpoint)
        report.records += len(records)
        report.readings += len(converted.readings)
        report.held += [f"{h.sequence_number}: {h.reason}" for h in held]
        if self.after_commit is not None:
            self.after_commit()
        if self.courier is not None:
            self.courier.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Scan and sync every `sync_interval_s` until `stop` is set; the courier runs beside."""
        courier_task = (
            asyncio.get_running_loop().create_task(self.courier.run()) if self.courier else None
        )
        try:
            while not stop.is_set():
                for report in await self.sync_all():
                    log.info("synced %s", report)
                try:
                    await asyncio.wait_for(stop.wait(), self.config.sync_interval_s)
                except TimeoutError:
                    continue
        finally:
            if courier_task is not None:
                courier_task.cancel()
