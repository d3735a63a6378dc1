"""The period a report covers: the one the caller asked for, not the span of the readings.

Coverage, readings per day and data sufficiency are all measured against it, so 7 full days
of CGM asked for over 14 days are 50 % active, not 100 %. When no period is asked for (the
command line on a file), the period is the whole local days the readings fall on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np

from core.metrics._localtime import local_dates_and_minutes
from core.metrics.series import BoolArray, EmptySeriesError, MetricsError, TimeArray
from core.wallclock import local_midnight

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Period:
    start: datetime  # aware, inclusive
    end: datetime  # aware, exclusive

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise MetricsError("a period's bounds are instants: give them a zone")
        if self.end <= self.start:
            raise MetricsError("a period must end after it starts")

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def days(self) -> float:
        """Length in days of 24 hours (13.96 for 14 local days across a spring DST change)."""
        return self.length.total_seconds() / SECONDS_PER_DAY

    def contains(self, times: TimeArray) -> BoolArray:
        """Which instants (whole seconds, floored) lie in the period: an instant at or after
        `start` floors to at least floor(start), one before `end` to less than ceil(end)."""
        start = np.datetime64(math.floor(self.start.timestamp()), "s")
        end = np.datetime64(math.ceil(self.end.timestamp()), "s")
        inside: BoolArray = (times >= start) & (times < end)
        return inside

    @classmethod
    def local_days_of(cls, times: TimeArray, tz: tzinfo) -> Period:
        """From local midnight of the first reading's day to local midnight after the last
        reading's day, in `tz`."""
        if times.size == 0:
            raise EmptySeriesError("a period of no readings has no days")
        dates, _ = local_dates_and_minutes(times, tz)
        first = dates.min().astype(object)
        last = dates.max().astype(object)
        return cls(local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz))

    def utc(self) -> Period:
        return Period(self.start.astimezone(UTC), self.end.astimezone(UTC))
