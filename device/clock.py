"""Meter clock correction: from the meter's wall clock to an instant.

A record's user-facing time (base time + time offset) is the meter's local wall clock
with no zone. The bridge knows the home's zone, and where the meter exposes its clock
(Current Time Service, or a Date Time characteristic in the Glucose Service as on Roche
meters) it reads it and records the skew: meter clock minus true local time
at the moment of reading. A record's instant is its user-facing time minus the skew, in
the home's zone. Without a readable clock the skew is unknown and taken as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from device.gls import DateTime, GlsError

# Current Time (0x2A2B): Date Time (7), day of week, fractions256, adjust reason.
CURRENT_TIME_SIZE = 10


class ClockError(ValueError):
    """The meter's Current Time value could not be read as a time."""


def parse_date_time(value: bytes) -> datetime:
    """The naive wall-clock time of a Date Time value (0x2A08), as Roche meters expose their
    clock inside the Glucose Service."""
    try:
        return DateTime.from_bytes(value).to_datetime()
    except GlsError as exc:
        raise ClockError(f"Date Time: {exc}") from exc


def parse_current_time(value: bytes) -> datetime:
    """The naive wall-clock time of a Current Time value."""
    if len(value) != CURRENT_TIME_SIZE:
        raise ClockError(f"Current Time needs {CURRENT_TIME_SIZE} bytes, got {len(value)}")
    try:
        stamp = DateTime.from_bytes(value[: DateTime.SIZE])
        return stamp.to_datetime()
    except GlsError as exc:
        raise ClockError(f"Current Time: {exc}") from exc


@dataclass(frozen=True)
class ClockCorrection:
    zone: ZoneInfo
    # Meter clock minus true local time; None when the meter does not expose its clock.
    skew: timedelta | None = None

    @classmethod
    def measure(cls, meter_now: datetime, received_at: datetime, zone: ZoneInfo) -> ClockCorrection:
        """The skew from a clock reading `meter_now` taken at instant `received_at`."""
        true_local = received_at.astimezone(zone).replace(tzinfo=None)
        skew = meter_now - true_local
        return cls(zone, timedelta(seconds=round(skew.total_seconds())))

    def instant(self, user_facing: datetime) -> datetime:
        """The UTC instant of a meter wall-clock time."""
        local = user_facing - (self.skew or timedelta(0))
        return local.replace(tzinfo=self.zone).astimezone(UTC)
