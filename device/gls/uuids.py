"""The GATT assigned numbers a glucose meter exposes, defined once: the bridge looks them up,
the simulator serves them.

Numbers are the Bluetooth SIG's 16-bit assigned numbers (Assigned Numbers, sections 3.4 and
3.8); :func:`uuid128` gives the full 128-bit form bleak names them by.
"""

from __future__ import annotations

from typing import Final

# The Bluetooth SIG base UUID: a 16-bit number n is 0000nnnn-0000-1000-8000-00805f9b34fb.
_BASE: Final = "0000{:04x}-0000-1000-8000-00805f9b34fb"

GLUCOSE_SERVICE: Final = 0x1808
MEASUREMENT: Final = 0x2A18
CONTEXT: Final = 0x2A34
FEATURE: Final = 0x2A51
RACP: Final = 0x2A52
# Date Time: Roche meters expose their clock with it inside the Glucose Service, where other
# meters use the Current Time Service.
DATE_TIME: Final = 0x2A08

DEVICE_INFORMATION_SERVICE: Final = 0x180A
MANUFACTURER_NAME: Final = 0x2A29
MODEL_NUMBER: Final = 0x2A24
SERIAL_NUMBER: Final = 0x2A25

CURRENT_TIME_SERVICE: Final = 0x1805
CURRENT_TIME: Final = 0x2A2B

# Client Characteristic Configuration descriptor and its bits (Core v5.4, Vol 3, Part G,
# 3.3.3.3).
CLIENT_CHARACTERISTIC_CONFIGURATION: Final = 0x2902
CCCD_NOTIFY: Final = 0x0001
CCCD_INDICATE: Final = 0x0002


def uuid128(number: int) -> str:
    """The 128-bit UUID string of a 16-bit assigned number, as bleak names services."""
    return _BASE.format(number)


def uuid16(number: int) -> str:
    """The four hex digits of a 16-bit assigned number, as bumble's GATT server takes them."""
    return f"{number:04X}"
