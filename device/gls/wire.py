"""Little-endian field helpers shared by the GLS record codecs.

Bluetooth GATT characteristics are little-endian throughout. Decoders first check the whole
length against the flags (:func:`require_length`) and then read fields with a
:class:`Reader` that cannot run past the end.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from device.gls.errors import LengthError, OutOfRangeError, ReservedValueError

UINT8_MAX = 0xFF
UINT16_MAX = 0xFFFF
SINT16_MIN = -0x8000
SINT16_MAX = 0x7FFF

E = TypeVar("E", bound=enum.IntEnum)


def require_length(data: bytes, expected: int, what: str) -> None:
    """Raise :class:`LengthError` unless ``data`` is exactly ``expected`` bytes long.

    Both too short and trailing extra bytes are refused: extra bytes mean the sender and we
    disagree about the layout, and guessing which fields they belong to is worse than saying so.
    """
    if len(data) != expected:
        raise LengthError(expected, len(data), what)


def require_at_least(data: bytes, minimum: int, what: str) -> None:
    """Raise :class:`LengthError` if ``data`` is shorter than the fixed part of its layout."""
    if len(data) < minimum:
        raise LengthError(minimum, len(data), what, at_least=True)


def check_range(field: str, value: int, minimum: int, maximum: int) -> int:
    """Return ``value`` if ``minimum <= value <= maximum``, else raise :class:`OutOfRangeError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OutOfRangeError(field, value, minimum, maximum)
    if not minimum <= value <= maximum:
        raise OutOfRangeError(field, value, minimum, maximum)
    return value


def lookup(enum_type: type[E], value: int, field: str) -> E:
    """The ``enum_type`` member for ``value``; a value it does not define is reserved."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        raise ReservedValueError(field, int(value)) from None


def snake_name(member: enum.Enum) -> str:
    """The snake-case name used in JSON and logs, e.g. ``capillary_whole_blood``."""
    name = member.name
    if name is None:  # only composite flags have no name; callers pass single members
        raise ValueError(f"{member!r} has no single name")
    return name.lower()


class Reader:
    """Reads little-endian fields from a buffer whose length was already checked."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, size: int) -> bytes:
        end = self._pos + size
        if end > len(self._data):  # a decoder bug, not bad input: lengths are checked first
            raise LengthError(end, len(self._data), "fields")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def s16(self) -> int:
        return int.from_bytes(self.take(2), "little", signed=True)


def u8(value: int) -> bytes:
    return value.to_bytes(1, "little")


def u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def s16(value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True)
