"""Wall-clock times to instants: the one rule for local times written without an offset.

A file (an iglu or Shanghai CSV, a meter's log) writes local times with no offset. Twice a
year such a time is not one instant: in the spring gap it names no instant at all, in the
autumn fold it names two. Imports and the command line resolve them here, the same way, and
say how many they met.

The rule is RFC 5545's (section 3.3.5, "DATE-TIME", local time):
- a **nonexistent** time (in a gap) is read with the UTC offset in force *before* the gap,
  so 02:30 on the night New York springs forward is 07:30 UTC (03:30 EDT): the clock that
  wrote it had not been moved yet;
- an **ambiguous** time (in a fold) is its *first* occurrence, except in a sequence already
  past that occurrence: a file written in time order that has reached 01:45 EDT and then
  says 01:00 is in the second 01:00 (EST). (`WallClock` keeps that context.)

In Python terms: zoneinfo with `fold=0` gives the pre-transition offset in a gap and the first
occurrence in a fold (PEP 495); `fold=1` the other one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from enum import StrEnum


class WallTime(StrEnum):
    """What a local time without an offset names in its zone."""

    EXACT = "exact"  # one instant
    AMBIGUOUS = "ambiguous"  # two instants (the autumn fold)
    NONEXISTENT = "nonexistent"  # no instant (the spring gap)


@dataclass(frozen=True)
class Resolved:
    instant: datetime  # aware, UTC
    kind: WallTime


def _round_trips(candidate: datetime, wall: datetime, zone: tzinfo) -> bool:
    back = candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None, fold=0)
    return back == wall.replace(fold=0)


def resolve(wall: datetime, zone: tzinfo, *, previous: datetime | None = None) -> Resolved:
    """The instant a naive wall time names in `zone` (module rule). `previous` is the instant
    of the time before it in a chronological sequence: an ambiguous time that sequence has
    already passed is its second occurrence."""
    if wall.tzinfo is not None:
        raise ValueError(f"{wall.isoformat()} carries an offset; only wall times are resolved")
    first = wall.replace(tzinfo=zone, fold=0)
    second = wall.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return Resolved(first.astimezone(UTC), WallTime.EXACT)
    if not _round_trips(first, wall, zone):
        # In a gap neither reading exists; fold=0 is the offset before the gap (RFC 5545).
        return Resolved(first.astimezone(UTC), WallTime.NONEXISTENT)
    early, late = first.astimezone(UTC), second.astimezone(UTC)
    if previous is not None and early < previous <= late:
        return Resolved(late, WallTime.AMBIGUOUS)
    return Resolved(early, WallTime.AMBIGUOUS)


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The instant (UTC) `day` begins in `zone`. Where a zone skips midnight (a gap at 00:00)
    the day begins at the end of the gap; where it skipped the whole date (Samoa on
    2011-12-30) this is the same instant as the next day's midnight."""
    return resolve(datetime.combine(day, time(0)), zone).instant


class WallClock:
    """Resolves the wall times of one chronological sequence (a subject of a file) in one
    zone and counts the ambiguous and nonexistent ones it met."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.ambiguous = 0
        self.nonexistent = 0
        self._previous: datetime | None = None

    def instant(self, wall: datetime) -> datetime:
        """The instant of a wall time; one with an offset is that instant as written."""
        if wall.tzinfo is not None:
            at = wall.astimezone(UTC)
        else:
            resolved = resolve(wall, self.zone, previous=self._previous)
            if resolved.kind is WallTime.AMBIGUOUS:
                self.ambiguous += 1
            elif resolved.kind is WallTime.NONEXISTENT:
                self.nonexistent += 1
            at = resolved.instant
        self._previous = at
        return at
