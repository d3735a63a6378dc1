"""A meter's clock: set by hand, often wrong, and drifting.

Meter clocks are set once by the patient (or never) and drift a few seconds a week;
daylight-saving changes and travel are not followed. The clock shows the meter's local
wall time; it is `offset` ahead of the true local time in `zone` at `set_at`, and gains
`drift_ppm` millionths of every second after that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

PPM = 1_000_000


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MeterClock:
    def __init__(
        self,
        zone: ZoneInfo,
        offset: timedelta = timedelta(0),
        drift_ppm: float = 0.0,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.zone = zone
        self.offset = offset
        self.drift_ppm = drift_ppm
        self._now = now
        self._set_at = now()

    def error_at(self, instant: datetime) -> timedelta:
        """How far the meter clock is ahead of true local time at `instant`."""
        drift = (instant - self._set_at).total_seconds() * self.drift_ppm / PPM
        return self.offset + timedelta(seconds=drift)

    def local_at(self, instant: datetime) -> datetime:
        """What the meter clock showed at `instant` (naive local wall time)."""
        true_local = instant.astimezone(self.zone).replace(tzinfo=None)
        return true_local + self.error_at(instant)

    def utc_at(self, instant: datetime) -> datetime:
        """The meter's idea of UTC at `instant`, for meters that keep UTC (naive)."""
        return instant.astimezone(UTC).replace(tzinfo=None) + self.error_at(instant)

    def now_local(self) -> datetime:
        return self.local_at(self._now())

    def set_wrong(self, offset: timedelta) -> None:
        """Set the clock `offset` away from the true local time, from now on."""
        self.offset = offset
        self._set_at = self._now()

    def set_zone(self, zone: ZoneInfo) -> None:
        """The patient set the clock for another zone (travel, a meter bought abroad)."""
        self.zone = zone
