"""Is there enough data to trust the numbers?

CGM: the share of the readings the sensor should have produced over the period (the
consensus asks for 14 days with at least 70 % of possible readings, Battelino 2019).
Meter: how many local days have at least N readings; fingerstick data is judged by the
habit of testing, not by coverage of the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import numpy as np
import numpy.typing as npt

from core.metrics._localtime import local_dates_and_minutes
from core.metrics.series import EmptySeriesError, TimeArray

# Consensus goal for a CGM report: at least 70 % of possible readings over 14 days.
CGM_MIN_COVERAGE_PCT = 70.0
CGM_RECOMMENDED_DAYS = 14
# A fingerstick day counts when it has at least this many readings: before each of three
# meals and at bedtime is the pattern ADA's Standards of Care ask of people on multiple
# daily insulin injections.
DEFAULT_MIN_METER_READINGS_PER_DAY = 4


def infer_interval(times: TimeArray) -> np.timedelta64:
    """The sensor interval: the median spacing of readings, to the nearest minute (>= 1)."""
    if times.size < 2:
        raise EmptySeriesError("the sensor interval needs at least two readings")
    spacing_s = float(np.median(np.diff(times).astype("timedelta64[s]").astype(np.int64)))
    return np.timedelta64(max(1, round(spacing_s / 60)), "m")


def cgm_coverage_pct(times: TimeArray, interval: np.timedelta64) -> float:
    """Readings received as a percent of those expected from first to last reading.

    Expected = floor((last - first) / interval) + 1; capped at 100 because a sensor's clock
    jitter can fit an extra reading into the period.
    """
    if times.size == 0:
        raise EmptySeriesError("coverage needs at least one reading")
    span = (times[-1] - times[0]).astype("timedelta64[s]").astype(np.int64)
    step = interval.astype("timedelta64[s]").astype(np.int64)
    expected = int(span // step) + 1
    received = int(np.unique(times).size)
    return min(100.0, 100.0 * received / expected)


@dataclass(frozen=True)
class MeterDays:
    days: int  # local calendar days from the first reading to the last, inclusive
    days_with_readings: int
    days_meeting_minimum: int  # days with at least `min_per_day` readings
    min_per_day: int


def meter_days(
    times: TimeArray, tz: tzinfo, min_per_day: int = DEFAULT_MIN_METER_READINGS_PER_DAY
) -> MeterDays:
    if times.size == 0:
        raise EmptySeriesError("days need at least one reading")
    dates, _ = local_dates_and_minutes(times, tz)
    unique, counts = np.unique(dates, return_counts=True)
    return MeterDays(
        days=calendar_days(dates),
        days_with_readings=int(unique.size),
        days_meeting_minimum=int(np.sum(counts >= min_per_day)),
        min_per_day=min_per_day,
    )


def calendar_days(local_dates: npt.NDArray[np.datetime64]) -> int:
    """Calendar days from the earliest to the latest date, both included."""
    span = (local_dates.max() - local_dates.min()).astype("timedelta64[D]").astype(np.int64)
    return int(span) + 1
