"""Daily summaries in the patient's own days: their time zone, DST and travel included.

A reading belongs to the local calendar day of the zone in force at its instant
(`core.zones.ZoneHistory`); a day runs from local midnight to the next local midnight, so
it lasts 23 hours on the spring DST change and 25 on the autumn one, less or more on a
travel day, and it may come in two stretches when travel over the date line repeats a date
(`DaySummary.intervals`; `hours` is their total).

What spans midnight belongs to the day it starts on, so the days add up to the period: a
CGM hypoglycaemia event is counted on the local day of its first low reading, and a
pre/post-meal pair on the day of its opening reading (pairs and events are found on the
whole series, then dated). Fingerstick lows count readings, each on its own day.

Pure computation over a `GlucoseSeries`: the caller fetches rows, this module never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from core.metrics import (
    BandPercentages,
    GlucoseSeries,
    HypoCounts,
    MealContext,
    Source,
    band_percentages,
    cgm_interval,
    hypo_events,
    in_target,
    meal_pairs,
    meter_hypo_flags,
)
from core.metrics._localtime import local_dates_and_minutes
from core.metrics.series import TimeArray
from core.zones import Interval, ZoneHistory, ZonePeriod

__all__ = ["DaySummary", "Interval", "TagStats", "ZoneHistory", "ZonePeriod", "daily_summaries"]

DateArray = npt.NDArray[np.datetime64]


@dataclass(frozen=True)
class TagStats:
    """Readings with one meal tag on one day (mg/dL); share in the ADA target of the tag,
    each reading judged in the unit it was measured in."""

    readings: int
    mean_mg_dl: float | None
    pct_in_target: float | None


@dataclass(frozen=True)
class DaySummary:
    date: date
    timezone: str  # zone in force at the start of the day
    start: datetime  # UTC instant the day begins (local midnight)
    end: datetime  # UTC instant it ends (the next local midnight)
    hours: float  # 24, or 23 / 25 on DST changes, other values on travel days
    intervals: tuple[Interval, ...]  # one, or two when travel repeats a date; none if skipped
    readings: int
    mean_mg_dl: float | None
    min_mg_dl: float | None
    max_mg_dl: float | None
    sd_mg_dl: float | None  # sample SD, None below two readings
    bands: BandPercentages | None
    hypo: HypoCounts | None  # events starting this day (CGM), readings (meter)
    fasting: TagStats
    before_meal: TagStats
    after_meal: TagStats
    meal_pairs: int  # pairs whose opening reading is on this day
    unpaired_after_meal: int
    mean_rise_mg_dl: float | None


def local_days(times: TimeArray, history: ZoneHistory) -> DateArray:
    """The patient's local calendar date of every instant (datetime64[D])."""
    dates, _ = local_dates_and_minutes(times, history)
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
    included (their statistics are None). Readings outside those dates only matter for
    what starts inside them (an event or a pair that began the evening before does not)."""
    dates = local_days(series.times, history)
    context = _Dated(series, history, dates, interval)
    out = []
    day = first
    while day <= last:
        out.append(context.summary(day))
        day += timedelta(days=1)
    return out


class _Dated:
    """Events, pairs and flags of the whole series, each with the local date it belongs to."""

    def __init__(
        self,
        series: GlucoseSeries,
        history: ZoneHistory,
        dates: DateArray,
        interval: np.timedelta64 | None,
    ) -> None:
        self.series = series
        self.history = history
        self.dates = dates
        self.ok = in_target(series)
        tags = series.meals or (None,) * len(series)
        self.tagged = {
            tag: np.array([t is tag for t in tags], dtype=np.bool_)
            for tag in (MealContext.FASTING, MealContext.BEFORE_MEAL, MealContext.AFTER_MEAL)
        }
        self.event_levels: dict[np.datetime64, list[int]] = {}
        if series.source is Source.CGM and len(series):
            events = hypo_events(series, cgm_interval(series, interval))
            starts = np.array([e.start for e in events], dtype="datetime64[s]")
            for day, event in zip(local_days(starts, history).tolist(), events, strict=True):
                self.event_levels.setdefault(np.datetime64(day, "D"), []).append(event.level)
        self.level1, self.level2 = meter_hypo_flags(series)
        pairs, unpaired = meal_pairs(series)
        self.pairs = [(dates[p.before_index], p) for p in pairs]
        self.unpaired = [dates[i] for i in unpaired]

    def summary(self, day: date) -> DaySummary:
        key = np.datetime64(day, "D")
        mask = self.dates == key
        bounds = self.history.day_bounds(day)
        stretches = self.history.day_intervals(day)
        hours = sum(s.length.total_seconds() for s in stretches) / 3600
        sub = self.series.select(mask)
        n = len(sub)
        mg_dl = sub.values_mg_dl
        rises = [p.rise_mg_dl for d, p in self.pairs if d == key]
        hypo = None
        if n and self.series.source is Source.CGM:
            levels = self.event_levels.get(key, [])
            level2 = levels.count(2)
            hypo = HypoCounts(len(levels) - level2, level2, "events")
        elif n:
            hypo = HypoCounts(
                int(self.level1[mask].sum()), int(self.level2[mask].sum()), "readings"
            )
        return DaySummary(
            date=day,
            timezone=self.history.name_at(bounds.start),
            start=bounds.start,
            end=bounds.end,
            hours=hours,
            intervals=stretches,
            readings=n,
            mean_mg_dl=float(np.mean(mg_dl)) if n else None,
            min_mg_dl=float(np.min(mg_dl)) if n else None,
            max_mg_dl=float(np.max(mg_dl)) if n else None,
            sd_mg_dl=float(np.std(mg_dl, ddof=1)) if n >= 2 else None,
            bands=band_percentages(sub) if n else None,
            hypo=hypo,
            fasting=self._tag_stats(mask, MealContext.FASTING),
            before_meal=self._tag_stats(mask, MealContext.BEFORE_MEAL),
            after_meal=self._tag_stats(mask, MealContext.AFTER_MEAL),
            meal_pairs=len(rises),
            unpaired_after_meal=sum(1 for d in self.unpaired if d == key),
            mean_rise_mg_dl=float(np.mean(rises)) if rises else None,
        )

    def _tag_stats(self, mask: npt.NDArray[np.bool_], tag: MealContext) -> TagStats:
        picked = mask & self.tagged[tag]
        count = int(picked.sum())
        if count == 0:
            return TagStats(0, None, None)
        return TagStats(
            readings=count,
            mean_mg_dl=float(np.mean(self.series.values_mg_dl[picked])),
            pct_in_target=float(100.0 * self.ok[picked].sum() / count),
        )
