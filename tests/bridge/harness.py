"""A bridge rig for tests: a virtual home (meters + the bridge's radio), the bridge's
SQLite store, and its uplink and courier on the real broker. Everything real but the radio."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

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
SCAN_S = 0.3
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
        await home.close()
        store.close()


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
