"""A bridge rig for tests: a virtual home (meters + the bridge's radio), the bridge's
SQLite store, and its uplink and courier on the real broker. Everything real but the radio.

The bridge suite runs against every simulator profile (tests/bridge/conftest.py): the field
quirks and the RACP operator sets (full, Nordic-like, minimal). "Every record stored exactly
once" counts a record as stored when it is a reading or a held record (`kept`): a record a
profile's quirk makes unreadable (a month 13) is held, never lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from core.contract import HeldRecord, ReadingsBatch, WireReading
from device.bridge import Bridge, BridgeConfig
from device.courier import STALL_AFTER_S, Courier
from device.store import BridgeStore
from device.uplink import Uplink
from firmware_sim.meter import SimulatedMeter
from firmware_sim.model import GlucoseModel, ModelReading
from firmware_sim.profiles import MeterProfile
from stack.virtual_home import VirtualHome

HOME = ZoneInfo("Asia/Shanghai")
# Virtual meters advertise every 100 ms; a short scan hears them.
SCAN_S = 0.25
# Generous: the whole outbox is confirmed in well under a second when healthy.
DELIVERY_TIMEOUT_S = 60.0
# Tests that provoke a lost batch want the re-send soon.
TEST_STALL_AFTER_S = 1.0


def model_readings(
    count: int, seed: int = 7, first_day: date = date(2025, 3, 1)
) -> list[ModelReading]:
    out: list[ModelReading] = []
    for reading in GlucoseModel(seed, HOME).readings(first_day, count):
        out.append(reading)
        if len(out) == count:
            break
    return out


@dataclass
class Rig:
    home: VirtualHome
    store: BridgeStore
    bridge: Bridge
    courier: Courier | None
    uplink: Uplink | None

    async def add_paired_meter(
        self, profile: MeterProfile, serial: str, readings: list[ModelReading], **kwargs: object
    ) -> SimulatedMeter:
        meter = await self.home.add_meter(profile, serial, HOME, **kwargs)  # type: ignore[arg-type]
        meter.load(readings)
        await self.home.pair(meter, self.store)
        return meter

    async def delivered(self) -> None:
        assert self.courier is not None
        await asyncio.wait_for(self.courier.drained(), DELIVERY_TIMEOUT_S)


@contextlib.asynccontextmanager
async def rig(
    state: Path,
    mqtt_url: str | None,
    bridge_id: str,
    *,
    stall_after: float = STALL_AFTER_S,
    after_commit: Callable[[], None] | None = None,
    home: VirtualHome | None = None,
) -> AsyncIterator[Rig]:
    owned = home is None  # a home passed in outlives this rig (a bridge restart)
    home = home or VirtualHome()
    store = BridgeStore(state / "bridge.db")
    uplink = courier = task = None
    if mqtt_url is not None:
        uplink = Uplink(mqtt_url, bridge_id)
        await asyncio.to_thread(uplink.start)
        courier = Courier(store, uplink, stall_after=stall_after)
        courier.attach(asyncio.get_running_loop())
        task = asyncio.get_running_loop().create_task(courier.run())
    bridge = Bridge(
        BridgeConfig(bridge_id, HOME, scan_s=SCAN_S),
        store,
        home.stack,
        courier=courier,
        after_commit=after_commit,
    )
    try:
        yield Rig(home, store, bridge, courier, uplink)
    finally:
        if task is not None:
            task.cancel()
        if uplink is not None:
            await asyncio.to_thread(uplink.close)
        if owned:
            await home.close()
        store.close()


def with_clock(profile: MeterProfile) -> MeterProfile:
    """The profile with a clock the bridge can read (its own way when it has one)."""
    if profile.current_time_service or profile.clock_in_glucose_service:
        return profile
    return dataclasses.replace(profile, current_time_service=True)


def without_clock(profile: MeterProfile) -> MeterProfile:
    return dataclasses.replace(profile, current_time_service=False, clock_in_glucose_service=False)


def held_by_quirk(profile: MeterProfile, sequences: range | list[int]) -> set[int]:
    """The sequence numbers a profile's quirk makes unreadable (CareSens-like month 13)."""
    every = profile.invalid_month_every
    return {n for n in sequences if every is not None and n % every == every - 1}


def outbox(store: BridgeStore) -> tuple[list[WireReading], list[HeldRecord]]:
    """What the bridge committed and has not seen confirmed: readings and held records."""
    batches = [ReadingsBatch.model_validate_json(e.payload) for e in store.pending(100_000)]
    return (
        [r for b in batches for r in b.readings],
        [h for b in batches for h in b.held],
    )


def outbox_sequences(store: BridgeStore) -> list[int]:
    """Sequence numbers of every record in the outbox, readings and held, duplicates kept."""
    readings, held = outbox(store)
    return sorted(
        [r.sequence_number for r in readings if r.sequence_number is not None]
        + [h.sequence_number for h in held if h.sequence_number is not None]
    )


def kept(database_url: str, serial: str) -> list[int]:
    """Sequence numbers of a meter's records stored as readings or held, duplicates kept."""
    with psycopg.connect(database_url) as conn:
        return sorted(
            r[0]
            for r in conn.execute(
                "SELECT sequence_number FROM readings WHERE device = %(d)s"
                " UNION ALL SELECT sequence_number FROM held_records WHERE device = %(d)s",
                {"d": serial},
            )
        )


def stored(database_url: str, serial: str) -> list[tuple[int, object, object, object]]:
    """(sequence number, meter time, measured_at, context) of a meter's stored readings."""
    with psycopg.connect(database_url) as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT sequence_number, meter_time, measured_at, context FROM readings"
                " WHERE device = %s ORDER BY meter_time",
                (serial,),
            )
        ]
