"""A patient's time zones over time (`ZoneHistory`), and their local days.

A patient's zone changes when they travel, so a reading belongs to the local calendar day of
the zone in force at its instant. Local day D is then the set of instants whose local date,
in the zone in force at that instant, is D: within each zone period, from D's midnight to
the next midnight in that zone. Usually that is one stretch of 24 hours (23 or 25 on DST
changes); on a travel day it is shorter or longer (New York -> Tokyo loses 13 hours), and
crossing the date line eastward (Tokyo -> Honolulu) a date can come twice, as two separate
stretches. `ZoneHistory.day_intervals` gives the stretches, so a day reports its true length.

No metrics here: `core.days` computes daily summaries with it, `core.metrics` takes it as an
ordinary tzinfo.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from core.wallclock import local_midnight


@dataclass(frozen=True)
class ZonePeriod:
    effective_from: datetime  # aware; datetime.min in UTC stands for "always"
    zone: str  # IANA name


@dataclass(frozen=True)
class Interval:
    start: datetime  # aware UTC, inclusive
    end: datetime  # exclusive

    @property
    def length(self) -> timedelta:
        return self.end - self.start


class ZoneHistory(tzinfo):
    """A tzinfo that follows a patient's zone history: converting an instant to it gives the
    local time in the zone in force at that instant (as a datetime in that `ZoneInfo`).

    It plugs into everything that takes a zone (`summarize`, `agp_bins`, `meter_days`), so
    travel is honoured without those functions knowing about it.
    """

    def __init__(self, periods: Sequence[ZonePeriod]) -> None:
        if not periods:
            raise ValueError("a zone history needs at least one zone")
        ordered = sorted(periods, key=lambda p: p.effective_from)
        self.periods = tuple(ordered)
        self.zones = tuple(ZoneInfo(p.zone) for p in ordered)
        self._starts = [p.effective_from for p in ordered]

    @classmethod
    def single(cls, zone: str) -> ZoneHistory:
        return cls([ZonePeriod(datetime.min.replace(tzinfo=UTC), zone)])

    def zone_at(self, instant: datetime) -> ZoneInfo:
        """The zone in force at an aware instant (the first zone before the history starts)."""
        index = bisect.bisect_right(self._starts, instant) - 1
        return self.zones[max(index, 0)]

    def name_at(self, instant: datetime) -> str:
        return str(self.zone_at(instant).key)

    # -- tzinfo protocol ---------------------------------------------------------------------
    def fromutc(self, dt: datetime) -> datetime:
        instant = dt.replace(tzinfo=UTC)
        return instant.astimezone(self.zone_at(instant))

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        if dt is None:
            return None
        return self._zone_of_local(dt).utcoffset(dt.replace(tzinfo=None))

    def dst(self, dt: datetime | None) -> timedelta | None:
        if dt is None:
            return None
        return self._zone_of_local(dt).dst(dt.replace(tzinfo=None))

    def tzname(self, dt: datetime | None) -> str | None:
        if dt is None:
            return None
        return self._zone_of_local(dt).tzname(dt.replace(tzinfo=None))

    def _zone_of_local(self, local: datetime) -> ZoneInfo:
        """The zone in force at a wall-clock time: the zone whose reading of it as an instant
        falls in that zone's own period (the latest one wins when periods overlap)."""
        found = self.zones[0]
        for index, zone in enumerate(self.zones):
            instant = local.replace(tzinfo=zone)
            if instant >= self.periods[index].effective_from:
                found = zone
        return found

    # -- local days ---------------------------------------------------------------------------
    def day_intervals(self, day: date) -> tuple[Interval, ...]:
        """The stretches of time whose local date is `day`, in time order (module docstring):
        one on most days, none for a date a zone skipped, two when travel repeats a date."""
        found: list[Interval] = []
        for index, zone in enumerate(self.zones):
            start = local_midnight(day, zone)
            end = local_midnight(day + timedelta(days=1), zone)
            lo = max(start, self._starts[index])
            hi = end if index + 1 == len(self.zones) else min(end, self._starts[index + 1])
            if lo >= hi:
                continue
            if found and found[-1].end == lo:  # the zone changed but the date did not
                found[-1] = Interval(found[-1].start, hi.astimezone(UTC))
            else:
                found.append(Interval(lo.astimezone(UTC), hi.astimezone(UTC)))
        return tuple(found)

    def day_bounds(self, day: date) -> Interval:
        """From the first instant of `day` to the last (the whole span when a date comes
        twice; a date skipped entirely is an empty interval at the instant it was skipped)."""
        stretches = self.day_intervals(day)
        if stretches:
            return Interval(stretches[0].start, stretches[-1].end)
        for zone in self.zones:
            at = local_midnight(day, zone)
            if self.zone_at(at).key == zone.key:
                return Interval(at, at)
        at = local_midnight(day, self.zones[-1])
        return Interval(at, at)

    def local_midnight(self, day: date) -> datetime:
        """The instant (UTC) at which `day` begins for the patient."""
        return self.day_bounds(day).start

    def __repr__(self) -> str:
        return f"ZoneHistory({[(p.effective_from.isoformat(), p.zone) for p in self.periods]})"
