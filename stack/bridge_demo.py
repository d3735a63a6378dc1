"""The demo's patients come in the way real ones do: each patient registered a bridge through
the API (which provisioned it in the broker), their fingersticks sit in a simulated meter,
the bridge bonds with it over the virtual link, syncs it with RACP, and delivers the batches
through the broker until ingest confirms them stored."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from device.bridge import Bridge, BridgeConfig
from device.courier import Courier
from device.store import BridgeStore
from device.uplink import Uplink
from firmware_sim.model import ModelReading
from firmware_sim.profiles import ACCU_CHEK, CONTOUR, MeterProfile
from stack.virtual_home import VIRTUAL_SCAN_S, VirtualHome

# How long the demo waits for a patient's readings to be confirmed stored.
DELIVERY_TIMEOUT_S = 60.0
# Real meters hold at most 1,000 results; a demo patient with more has the oldest dropped.
DEMO_METER_CAPACITY = 1_000


@dataclass(frozen=True)
class DemoMeter:
    bridge_id: str  # registered by its patient through the API
    mqtt_url: str  # the bridge's broker credentials, as the API returned them
    serial: str
    zone: ZoneInfo
    readings: Sequence[ModelReading]
    profile: MeterProfile = CONTOUR


async def _sync_one(meter_spec: DemoMeter, state: Path) -> int:
    home = VirtualHome()
    store = BridgeStore(state / f"{meter_spec.bridge_id}.db")
    uplink = Uplink(meter_spec.mqtt_url, meter_spec.bridge_id)
    await asyncio.to_thread(uplink.start)
    courier = Courier(store, uplink)
    courier.attach(asyncio.get_running_loop())
    task = asyncio.get_running_loop().create_task(courier.run())
    try:
        meter = await home.add_meter(
            meter_spec.profile, meter_spec.serial, meter_spec.zone, capacity=DEMO_METER_CAPACITY
        )
        meter.load(meter_spec.readings)
        await home.pair(meter, store)
        bridge = Bridge(
            BridgeConfig(meter_spec.bridge_id, meter_spec.zone, scan_s=VIRTUAL_SCAN_S),
            store,
            home.stack,
            courier=courier,
        )
        reports = await bridge.sync_all()
        await asyncio.wait_for(courier.drained(), DELIVERY_TIMEOUT_S)
        return sum(r.readings for r in reports)
    finally:
        task.cancel()
        await asyncio.to_thread(uplink.close)
        await home.close()
        store.close()


def sync_demo_patients(meters: Sequence[DemoMeter]) -> list[int]:
    """Sync each demo meter through its bridge; returns the readings stored per meter."""

    async def main() -> list[int]:
        with tempfile.TemporaryDirectory(prefix="glucobridge-demo-bridge-") as state:
            return [await _sync_one(m, Path(state)) for m in meters]

    return asyncio.run(main())


__all__ = ["ACCU_CHEK", "CONTOUR", "DemoMeter", "sync_demo_patients"]
