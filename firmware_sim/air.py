"""The virtual radio: bumble controllers on one in-process LocalLink.

Devices use random static addresses and distribute them as their identity when bonding,
so a bond is found under the address a peer connects from.

Every device made here runs the real bumble host (HCI, L2CAP, ATT, GATT, SMP) over a
simulated controller; only the radio is virtual. Devices must be created inside the event
loop that will run them (bumble's controllers bind to the running loop).
"""

from __future__ import annotations

import itertools

from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

# Random static addresses have the two top bits set (Core Vol 6, Part B, 1.3.2.1).
_STATIC_ADDRESS_PREFIX = 0xC0


class VirtualAir:
    """One shared medium; everything on it can hear and connect to everything else."""

    def __init__(self) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
        self._numbers = itertools.count(1)

    def next_address(self) -> str:
        n = next(self._numbers)
        return f"{_STATIC_ADDRESS_PREFIX:02X}:00:00:00:{n >> 8:02X}:{n & 0xFF:02X}"

    def device(self, name: str, address: str | None = None) -> Device:
        address = address or self.next_address()
        controller = Controller(name, link=self.link, public_address=address)
        return Device(
            name=name, address=Address(address), host=Host(controller, AsyncPipeSink(controller))
        )
