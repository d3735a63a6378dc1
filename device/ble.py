"""Which bleak backend the bridge uses: configuration, not code.

On a Raspberry Pi the defaults apply (bleak picks BlueZ over D-Bus). Tests and the demo
pass the virtual link's backend classes (firmware_sim.bleak_backend) with their keyword
arguments; the bridge code above is the same either way. The GATT UUIDs the bridge looks
up are the codec's (device.gls.uuids).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner


@dataclass(frozen=True)
class BleStack:
    """bleak's `backend=` and the keyword arguments that backend needs."""

    scanner_backend: type[BaseBleakScanner] | None = None
    client_backend: type[BaseBleakClient] | None = None
    scanner_kwargs: Mapping[str, Any] = field(default_factory=dict)
    client_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def scanner(self, service_uuids: list[str]) -> BleakScanner:
        return BleakScanner(
            service_uuids=service_uuids, backend=self.scanner_backend, **self.scanner_kwargs
        )

    def client(
        self,
        device: BLEDevice,
        disconnected: Callable[[BleakClient], None] | None = None,
        timeout: float | None = None,
    ) -> BleakClient:
        extra: dict[str, Any] = dict(self.client_kwargs)
        if timeout is not None:
            extra["timeout"] = timeout
        return BleakClient(
            device, disconnected_callback=disconnected, backend=self.client_backend, **extra
        )
