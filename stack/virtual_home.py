"""A home on the virtual link: simulated meters, the bridge's radio, and the bleak backend
configuration that points the bridge at them. Used by `glucobridge bridge --backend
virtual`, the demo and the tests; everything runs in the caller's event loop.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from device.ble import BleStack
from device.gls import uuids as gatt
from device.pairing import pair_meter
from device.store import BondedMeter, BridgeStore
from firmware_sim.air import VirtualAir
from firmware_sim.bleak_backend import BumbleClient, BumbleRadio, BumbleScanner
from firmware_sim.clock import MeterClock
from firmware_sim.meter import SimulatedMeter
from firmware_sim.profiles import MeterProfile

# Virtual meters advertise every 100 ms: a quarter second hears each one twice.
VIRTUAL_SCAN_S = 0.25
# The person reads the passkey off the meter's screen within this long.
PASSKEY_WAIT_S = 30.0


class VirtualHome:
    def __init__(self, keystore_path: Path | None = None) -> None:
        self.air = VirtualAir()
        self.radio = BumbleRadio(self.air.device("glucobridge"), keystore_path)
        self.meters: list[SimulatedMeter] = []

    @property
    def stack(self) -> BleStack:
        return BleStack(
            scanner_backend=BumbleScanner,
            client_backend=BumbleClient,
            scanner_kwargs={"radio": self.radio},
            client_kwargs={"radio": self.radio},
        )

    async def add_meter(
        self,
        profile: MeterProfile,
        serial: str,
        zone: ZoneInfo,
        *,
        clock_offset: timedelta = timedelta(0),
        clock: MeterClock | None = None,
        capacity: int | None = None,
        fixed_passkey: int | None = None,
    ) -> SimulatedMeter:
        meter = SimulatedMeter(
            self.air.device(f"{profile.key}-{serial}"),
            profile,
            serial,
            zone,
            clock=clock or MeterClock(zone, clock_offset),
            capacity=capacity,
            fixed_passkey=fixed_passkey,
        )
        await meter.start()
        self.meters.append(meter)
        return meter

    async def pair(self, meter: SimulatedMeter, store: BridgeStore) -> BondedMeter:
        """Put `meter` in pairing mode and bond the bridge with it, typing what it shows."""
        shown: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_passkey(number: int) -> None:
            if not shown.done():
                shown.set_result(number)

        meter.passkey_listeners.append(on_passkey)
        meter.pairing_mode = True
        try:
            async with self.stack.scanner([gatt.uuid128(gatt.GLUCOSE_SERVICE)]) as scanner:
                await asyncio.sleep(VIRTUAL_SCAN_S)
            found = [d for d in scanner.discovered_devices if d.address == meter.address]
            if not found:
                raise LookupError(f"meter {meter.serial} not heard")

            async def type_passkey() -> int:
                return await asyncio.wait_for(shown, PASSKEY_WAIT_S)

            return await pair_meter(self.stack, store, found[0], type_passkey)
        finally:
            meter.pairing_mode = False
            meter.passkey_listeners.remove(on_passkey)

    async def close(self) -> None:
        for meter in self.meters:
            await meter.stop()
