"""Pairing a meter: find one advertising the Glucose Service that is not bonded yet, bond
with it (the meter shows a passkey, the person types it), remember it as this bridge's.

With BlueZ the passkey prompt comes from the pairing agent registered on D-Bus (the
bridge's own, device.pairing_agent, while `glucobridge bridge pair` runs); backends that take
a `passkey_entry=` argument (the virtual link's) ask through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from device import ble
from device.gls import uuids as gatt
from device.store import BondedMeter, BridgeStore

# Real meters stay in pairing mode for about two minutes; the person types in the meantime.
PAIRING_TIMEOUT_S = 120.0


class PairingError(Exception):
    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"pairing with {address} failed: {reason}")
        self.address = address
        self.reason = reason


async def find_unbonded(stack: ble.BleStack, store: BridgeStore, scan_s: float) -> list[BLEDevice]:
    bonded = store.bonded()
    async with stack.scanner([gatt.uuid128(gatt.GLUCOSE_SERVICE)]) as scanner:
        await asyncio.sleep(scan_s)
    return [d for d in scanner.discovered_devices if d.address not in bonded]


async def pair_meter(
    stack: ble.BleStack,
    store: BridgeStore,
    device: BLEDevice,
    passkey_entry: Callable[[], Awaitable[int]],
) -> BondedMeter:
    client = stack.client(device, timeout=PAIRING_TIMEOUT_S)
    try:
        await client.connect()
        await asyncio.wait_for(client.pair(passkey_entry=passkey_entry), PAIRING_TIMEOUT_S)
        serial = None
        if client.services.get_characteristic(gatt.uuid128(gatt.SERIAL_NUMBER)) is not None:
            raw = await client.read_gatt_char(gatt.uuid128(gatt.SERIAL_NUMBER))
            serial = bytes(raw).decode("utf-8", "replace").strip("\x00 ") or None
    except (BleakError, TimeoutError) as exc:
        raise PairingError(device.address, str(exc) or type(exc).__name__) from exc
    finally:
        if client.is_connected:
            await client.disconnect()
    store.add_bonded(device.address, device.name, serial)
    return BondedMeter(device.address, device.name, serial)
