"""Is there enough data to trust the numbers?

CGM (International Consensus on Time in Range, Battelino 2019): a report needs 14 days with
the sensor active at least 70 % of the time. Active time is measured over the *requested*
period: readings received as a share of those the sensor would have sent over it.

Fingersticks have no consensus rule; this project's, for the numbers that describe the
whole day (GMI, the AGP): the period covers at least 14 days, and on at least 70 % of its
days the patient tested at least 4 times. It mirrors the CGM rule (14 days, 70 %), with a
"day of data" being the four-point profile (before each of three meals and at bedtime) ADA's
Standards of Care ask of people on multiple daily insulin injections. A GMI from fewer,
scattered fingersticks is the mean of the moments someone chose to test, not of the day.
Below the rule a meter report carries no GMI and no AGP; everything else it reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from core.metrics._localtime import local_dates_and_minutes
from core.metrics.period import Period
from core.metrics.series import EmptySeriesError, TimeArray

# Consensus: at least 14 days with at least 70 % of possible CGM readings.
CONSENSUS_DAYS = 14
CGM_MIN_ACTIVE_PCT = 70.0
# A period of 14 local days is an hour short when it spans a spring DST change; it is still
# the 14 days the consensus asks for.
PERIOD_SLACK = timedelta(hours=1)
# A fingerstick day counts when it has at least this many readings: before each of three
# meals and at bedtime is the pattern ADA's Standards of Care ask of people on multiple
# daily insulin injections.
DEFAULT_MIN_METER_READINGS_PER_DAY = 4
# Share of the period's days that must meet that minimum (the consensus's 70 %).
METER_MIN_SHARE_OF_DAYS_PCT = 70.0


def infer_interval(times: TimeArray) -> np.timedelta64:
    """The sensor interval: the median spacing of readings, to the nearest minute (>= 1)."""
    if times.size < 2:
        raise EmptySeriesError("the sensor interval needs at least two readings")
    spacing_s = float(np.median(np.diff(times).astype("timedelta64[s]").astype(np.int64)))
    return np.timedelta64(max(1, round(spacing_s / 60)), "m")


def long_enough(period: Period) -> bool:
    return period.length >= timedelta(days=CONSENSUS_DAYS) - PERIOD_SLACK


def cgm_active_pct(times: TimeArray, interval: np.timedelta64, period: Period) -> float:
    """Readings received in the period (at distinct instants; `times` sorted) as a percent of
    the readings a sensor sending every `interval` would have sent over the whole period:
    floor(period / interval). Capped at 100 because clock jitter can fit an extra reading
    in."""
    step = int(interval.astype("timedelta64[s]").astype(np.int64))
    expected = max(1, int(period.length.total_seconds()) // step)
    inside = times[period.contains(times)]  # sorted, as a series' times are
    received = int(inside.size and 1 + np.count_nonzero(np.diff(inside)))
    return min(100.0, 100.0 * received / expected)


@dataclass(frozen=True)
class CgmSufficiency:
    interval_minutes: int
    active_pct: float
    met: bool  # 14 days (less PERIOD_SLACK) with at least 70 % active


def cgm_sufficiency(times: TimeArray, interval: np.timedelta64, period: Period) -> CgmSufficiency:
    active = cgm_active_pct(times, interval, period)
    return CgmSufficiency(
        interval_minutes=int(interval.astype("timedelta64[m]").astype(np.int64)),
        active_pct=active,
        met=long_enough(period) and active >= CGM_MIN_ACTIVE_PCT,
    )


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


@dataclass(frozen=True)
class MeterSufficiency:
    min_readings_per_day: int
    days_with_readings: int
    days_meeting_minimum: int
    met: bool  # the rule for GMI and AGP (module docstring)


def meter_sufficiency(
    times: TimeArray,
    tz: tzinfo,
    period: Period,
    min_per_day: int = DEFAULT_MIN_METER_READINGS_PER_DAY,
) -> MeterSufficiency:
    days = meter_days(times, tz, min_per_day)
    share_met = days.days_meeting_minimum >= METER_MIN_SHARE_OF_DAYS_PCT / 100 * period.days
    return MeterSufficiency(
        min_readings_per_day=min_per_day,
        days_with_readings=days.days_with_readings,
        days_meeting_minimum=days.days_meeting_minimum,
        met=long_enough(period) and share_met,
    )


def calendar_days(local_dates: npt.NDArray[np.datetime64]) -> int:
    """Calendar days from the earliest to the latest date, both included."""
    span = (local_dates.max() - local_dates.min()).astype("timedelta64[D]").astype(np.int64)
    return int(span) + 1
