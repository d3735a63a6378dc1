"""Daily summaries in the patient's own days: their time zone, DST and travel included.

A patient's zone changes when they travel, so a reading belongs to the local calendar day of
the zone in force at its instant (`ZoneHistory`). A day runs from local midnight to the next
local midnight, so it lasts 23 hours on the spring DST change and 25 on the autumn one, and
holds exactly the readings whose local date it is. On a day the patient changed zone, the
day starts at midnight in the zone of the morning and ends at midnight in the zone of the
evening; every reading still lands in exactly one day.

Pure computation over a `GlucoseSeries`: the caller fetches rows, this module never does I/O.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from core.metrics import (
    ADA_TARGETS,
    BandPercentages,
    GlucoseSeries,
    HypoCounts,
    MealContext,
    Source,
    band_percentages,
    hypo_counts,
    infer_interval,
    meal_summary,
)
from core.metrics._localtime import local_dates_and_minutes

# Without two readings in a day a CGM's interval cannot be inferred from the day alone;
# 5 minutes is the interval of the sensors in common use.
FALLBACK_CGM_INTERVAL = np.timedelta64(5, "m")


@dataclass(frozen=True)
class ZonePeriod:
    effective_from: datetime  # aware; datetime.min in UTC stands for "always"
    zone: str  # IANA name


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

    def local_midnight(self, day: date) -> datetime:
        """The instant (UTC) at which `day` begins for the patient."""
        naive = datetime.combine(day, time(0))
        return naive.replace(tzinfo=self._zone_of_local(naive)).astimezone(UTC)

    def __repr__(self) -> str:
        return f"ZoneHistory({[(p.effective_from.isoformat(), p.zone) for p in self.periods]})"


@dataclass(frozen=True)
class TagStats:
    """Readings with one meal tag on one day (mg/dL); target share per ADA, in the unit
    each reading was measured in."""

    readings: int
    mean_mg_dl: float | None
    pct_in_target: float | None


@dataclass(frozen=True)
class DaySummary:
    date: date
    timezone: str  # zone in force at the start of the day
    start: datetime  # UTC instant of local midnight
    end: datetime  # UTC instant of the next local midnight
    hours: float  # 24, or 23 / 25 on DST changes, other values on travel days
    readings: int
    mean_mg_dl: float | None
    min_mg_dl: float | None
    max_mg_dl: float | None
    sd_mg_dl: float | None  # sample SD, None below two readings
    bands: BandPercentages | None
    hypo: HypoCounts | None
    fasting: TagStats
    before_meal: TagStats
    after_meal: TagStats
    meal_pairs: int
    mean_rise_mg_dl: float | None


def local_days(series: GlucoseSeries, history: ZoneHistory) -> npt.NDArray[np.datetime64]:
    """The patient's local calendar date of every reading (datetime64[D])."""
    dates, _ = local_dates_and_minutes(series.times, history)
    return dates


def daily_summaries(
    series: GlucoseSeries,
    history: ZoneHistory,
    first: date,
    last: date,
    *,
    interval: np.timedelta64 | None = None,
) -> list[DaySummary]:
    """One summary per local date from `first` to `last` inclusive, days without readings
    included (their statistics are None). Readings outside those dates are ignored."""
    dates = local_days(series, history)
    if series.source is Source.CGM and interval is None and len(series) >= 2:
        interval = infer_interval(series.times)
    out = []
    day = first
    while day <= last:
        start = history.local_midnight(day)
        end = history.local_midnight(day + timedelta(days=1))
        mask = dates == np.datetime64(day, "D")
        out.append(_summarize_day(series, mask, day, start, end, history, interval))
        day += timedelta(days=1)
    return out


def _summarize_day(
    series: GlucoseSeries,
    mask: npt.NDArray[np.bool_],
    day: date,
    start: datetime,
    end: datetime,
    history: ZoneHistory,
    interval: np.timedelta64 | None,
) -> DaySummary:
    meals = series.meals
    sub = GlucoseSeries(
        times=series.times[mask],
        values=series.values[mask],
        unit=series.unit,
        source=series.source,
        meals=tuple(m for m, keep in zip(meals, mask.tolist(), strict=True) if keep)
        if meals is not None
        else None,
    )
    hours = (end - start).total_seconds() / 3600
    n = len(sub)
    mg_dl = sub.values_mg_dl
    empty = TagStats(0, None, None)
    if n == 0:
        return DaySummary(
            date=day,
            timezone=history.name_at(start),
            start=start,
            end=end,
            hours=hours,
            readings=0,
            mean_mg_dl=None,
            min_mg_dl=None,
            max_mg_dl=None,
            sd_mg_dl=None,
            bands=None,
            hypo=None,
            fasting=empty,
            before_meal=empty,
            after_meal=empty,
            meal_pairs=0,
            mean_rise_mg_dl=None,
        )
    day_interval = interval
    if sub.source is Source.CGM and day_interval is None:
        day_interval = infer_interval(sub.times) if n >= 2 else FALLBACK_CGM_INTERVAL
    pairs = meal_summary(sub)
    return DaySummary(
        date=day,
        timezone=history.name_at(start),
        start=start,
        end=end,
        hours=hours,
        readings=n,
        mean_mg_dl=float(np.mean(mg_dl)),
        min_mg_dl=float(np.min(mg_dl)),
        max_mg_dl=float(np.max(mg_dl)),
        sd_mg_dl=float(np.std(mg_dl, ddof=1)) if n >= 2 else None,
        bands=band_percentages(sub.values, sub.unit),
        hypo=hypo_counts(sub, day_interval),
        fasting=_tag_stats(sub, MealContext.FASTING),
        before_meal=_tag_stats(sub, MealContext.BEFORE_MEAL),
        after_meal=_tag_stats(sub, MealContext.AFTER_MEAL),
        meal_pairs=len(pairs.pairs),
        mean_rise_mg_dl=pairs.mean_rise_mg_dl,
    )


def _tag_stats(series: GlucoseSeries, tag: MealContext) -> TagStats:
    if series.meals is None:
        return TagStats(0, None, None)
    picked = np.array([m is tag for m in series.meals], dtype=np.bool_)
    if not picked.any():
        return TagStats(0, None, None)
    values = series.values[picked]
    target = ADA_TARGETS[series.unit]
    if tag is MealContext.AFTER_MEAL:
        ok = values < target.after_below
    else:
        ok = (values >= target.before_low) & (values <= target.before_high)
    return TagStats(
        readings=int(picked.sum()),
        mean_mg_dl=float(np.mean(series.values_mg_dl[picked])),
        pct_in_target=float(100.0 * ok.sum() / picked.sum()),
    )
