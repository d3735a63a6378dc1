"""Bluetooth Date Time (org.bluetooth.characteristic.date_time), 7 bytes.

Layout: year uint16 LE (1582..9999), month, day, hours, minutes, seconds (uint8 each).
The specification lets year, month and day be 0, meaning "not known".

How this codec handles "not known": :class:`DateTime` keeps the raw fields, zeros included,
so such a record still decodes and re-encodes byte for byte (a meter whose clock was never
set still has readings worth keeping). Only turning it into a calendar instant
(:meth:`DateTime.to_datetime`) needs every field; it raises :class:`UnknownDateTimeError`
otherwise, and :attr:`DateTime.is_known` lets callers ask first. The bridge decides what
to do with such a reading (it has the meter clock and the sync time to reason with).

Base time has no zone: it is the meter's local wall clock, so :meth:`to_datetime` returns a
naive :class:`datetime.datetime` and :meth:`from_datetime` refuses aware ones.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from device.gls.errors import NotRepresentableError, UnknownDateTimeError
from device.gls.wire import Reader, check_range, require_length, u16

YEAR_MIN = 1582  # the Date Time characteristic's range: Gregorian calendar onwards
YEAR_MAX = 9999
UNKNOWN = 0  # year, month or day 0 means "not known" in the Date Time characteristic
# Leap year used to bound the day when the year is not known, so 29 February stays valid.
_ANY_LEAP_YEAR = 2000


@dataclass(frozen=True, slots=True)
class DateTime:
    """A Bluetooth Date Time; year, month and day may be 0 ("not known")."""

    SIZE: ClassVar[int] = 7

    year: int
    month: int
    day: int
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    def __post_init__(self) -> None:
        if self.year != UNKNOWN:
            check_range("year", self.year, YEAR_MIN, YEAR_MAX)
        check_range("month", self.month, 0, 12)
        if self.month == UNKNOWN:
            check_range("day", self.day, 0, 31)
        else:
            year = self.year if self.year != UNKNOWN else _ANY_LEAP_YEAR
            check_range("day", self.day, 0, calendar.monthrange(year, self.month)[1])
        check_range("hours", self.hours, 0, 23)
        check_range("minutes", self.minutes, 0, 59)
        check_range("seconds", self.seconds, 0, 59)

    @classmethod
    def from_datetime(cls, value: dt.datetime) -> DateTime:
        """The Date Time of a naive wall-clock time; sub-second precision is dropped."""
        if value.tzinfo is not None:
            raise NotRepresentableError(
                "date time", value, "Date Time has no zone; pass the meter's naive wall clock"
            )
        return cls(value.year, value.month, value.day, value.hour, value.minute, value.second)

    @classmethod
    def from_bytes(cls, data: bytes) -> DateTime:
        require_length(data, cls.SIZE, "date time fields")
        return cls.read(Reader(data))

    @classmethod
    def read(cls, reader: Reader) -> DateTime:
        return cls(reader.u16(), reader.u8(), reader.u8(), reader.u8(), reader.u8(), reader.u8())

    @property
    def is_known(self) -> bool:
        """True when year, month and day are all known, so a calendar instant exists."""
        return UNKNOWN not in (self.year, self.month, self.day)

    def to_datetime(self) -> dt.datetime:
        """The naive wall-clock instant; raises :class:`UnknownDateTimeError` if not known."""
        for field, value in (("year", self.year), ("month", self.month), ("day", self.day)):
            if value == UNKNOWN:
                raise UnknownDateTimeError(field)
        return dt.datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)

    def __bytes__(self) -> bytes:
        return u16(self.year) + bytes(
            (self.month, self.day, self.hours, self.minutes, self.seconds)
        )

    def __str__(self) -> str:
        return (
            f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
            f"T{self.hours:02d}:{self.minutes:02d}:{self.seconds:02d}"
        )
