"""`summarize`: the clinical report of one series over one period, the one entry point the
command line and the API share (`core.metrics.report` names every key)."""

from __future__ import annotations

from datetime import tzinfo

import numpy as np

from core.metrics import stats
from core.metrics.agp import DEFAULT_AGP_BIN_MINUTES, METER_AGP_BIN_MINUTES, AgpBin, agp_bins
from core.metrics.bands import THRESHOLDS, BandPercentages, band_percentages
from core.metrics.goals import check_goals
from core.metrics.hypo import HypoCounts, hypo_counts
from core.metrics.meals import ADA_TARGETS, meal_summary
from core.metrics.period import Period
from core.metrics.report import (
    AgpBinOut,
    BandLimits,
    BandShares,
    CgmReport,
    CgmSufficiency,
    GoalCheck,
    Hypoglycaemia,
    Meals,
    MealTargets,
    MeterReport,
    MeterSufficiency,
    PeriodOut,
    TagStats,
)
from core.metrics.risk import risk_indices
from core.metrics.series import EmptySeriesError, GlucoseSeries, MealContext, MetricsError, Source
from core.metrics.sufficiency import (
    CGM_MIN_ACTIVE_PCT,
    CONSENSUS_DAYS,
    DEFAULT_MIN_METER_READINGS_PER_DAY,
    METER_MIN_SHARE_OF_DAYS_PCT,
    cgm_sufficiency,
    infer_interval,
    meter_sufficiency,
)
from core.units import Unit, from_mg_dl

# Without two readings a CGM's interval cannot be inferred; 5 minutes is the interval of
# the sensors in common use (Dexcom, Libre 2/3 stream every 1-5 minutes, Libre 1 at 15).
FALLBACK_CGM_INTERVAL = np.timedelta64(5, "m")

Summary = CgmReport | MeterReport


def cgm_interval(series: GlucoseSeries, interval: np.timedelta64 | None) -> np.timedelta64:
    if interval is not None:
        return interval
    return infer_interval(series.times) if len(series) >= 2 else FALLBACK_CGM_INTERVAL


def summarize(
    series: GlucoseSeries,
    tz: tzinfo,
    *,
    period: Period | None = None,
    unit: Unit = Unit.MG_DL,
    interval: np.timedelta64 | None = None,
    min_readings_per_day: int = DEFAULT_MIN_METER_READINGS_PER_DAY,
    agp_bin_minutes: int | None = None,
) -> Summary:
    """The report of `series` over `period` (default: the local days its readings fall
    on), glucose in `unit`; `tz` is the patient's zone (days, AGP time of day).

    For CGM data `interval` is the sensor interval; when omitted it is inferred from the
    readings' median spacing. Every reading must lie in the period.
    """
    if len(series) == 0:
        raise EmptySeriesError("no readings to summarize (control solution does not count)")
    if period is None:
        period = Period.local_days_of(series.times, tz)
    if not period.contains(series.times).all():
        raise MetricsError("readings outside the period; select the period's readings first")
    if series.source is Source.CGM:
        return _cgm(series, tz, period, unit, cgm_interval(series, interval), agp_bin_minutes)
    return _meter(series, tz, period, unit, min_readings_per_day, agp_bin_minutes)


class _Common:
    """What both reports compute the same way, in mg/dL, then given in `unit`."""

    def __init__(self, series: GlucoseSeries, period: Period, unit: Unit) -> None:
        mg_dl = series.values_mg_dl
        self.unit = unit
        self.mean_mg_dl = stats.mean(mg_dl)
        self.sd_mg_dl = stats.sd(mg_dl)
        self.cv_pct = stats.cv_pct(mg_dl)
        self.bands = band_percentages(series)
        self.risk = risk_indices(mg_dl)
        self.period = PeriodOut(start=period.start, end=period.end, days=period.days)
        t = THRESHOLDS[unit]
        self.limits = BandLimits(
            very_low_below=t.very_low_below,
            low_below=t.low_below,
            high_above=t.high_above,
            very_high_above=t.very_high_above,
        )

    def glucose(self, value_mg_dl: float) -> float:
        return from_mg_dl(value_mg_dl, self.unit)

    def maybe(self, value_mg_dl: float | None) -> float | None:
        return None if value_mg_dl is None else from_mg_dl(value_mg_dl, self.unit)

    def agp(self, bins: tuple[AgpBin, ...]) -> list[AgpBinOut]:
        g = self.glucose
        return [
            AgpBinOut(
                minute_of_day=b.minute_of_day,
                readings=b.readings,
                p5=g(b.p5),
                p25=g(b.p25),
                p50=g(b.p50),
                p75=g(b.p75),
                p95=g(b.p95),
            )
            for b in bins
        ]


def shares(bands: BandPercentages) -> BandShares:
    return BandShares(
        very_low=bands.very_low,
        low=bands.low,
        in_range=bands.in_range,
        high=bands.high,
        very_high=bands.very_high,
    )


def hypoglycaemia(counts: HypoCounts) -> Hypoglycaemia:
    return Hypoglycaemia(counted=counts.counted, level1=counts.level1, level2=counts.level2)


def _cgm(
    series: GlucoseSeries,
    tz: tzinfo,
    period: Period,
    unit: Unit,
    interval: np.timedelta64,
    agp_bin_minutes: int | None,
) -> CgmReport:
    c = _Common(series, period, unit)
    enough = cgm_sufficiency(series.times, interval, period)
    bin_minutes = agp_bin_minutes or DEFAULT_AGP_BIN_MINUTES
    return CgmReport(
        unit=unit,
        period=c.period,
        readings=len(series),
        mean=c.glucose(c.mean_mg_dl),
        sd=c.maybe(c.sd_mg_dl),
        cv_pct=c.cv_pct,
        gmi_pct=stats.gmi_pct(c.mean_mg_dl),
        time_in_ranges=shares(c.bands),
        limits=c.limits,
        lbgi=c.risk.lbgi,
        hbgi=c.risk.hbgi,
        hypoglycaemia=hypoglycaemia(hypo_counts(series, interval)),
        sufficiency=CgmSufficiency(
            required_days=CONSENSUS_DAYS,
            required_active_pct=CGM_MIN_ACTIVE_PCT,
            interval_minutes=enough.interval_minutes,
            active_pct=enough.active_pct,
            met=enough.met,
        ),
        goals=[
            GoalCheck(
                metric=r.goal.metric,
                comparison=r.goal.comparison,
                goal_pct=r.goal.target_pct,
                value_pct=r.value_pct,
                met=r.met,
            )
            for r in check_goals(c.bands, c.cv_pct)
        ],
        agp_bin_minutes=bin_minutes,
        agp=c.agp(agp_bins(series.times, series.values_mg_dl, tz, bin_minutes)),
    )


def _meter(
    series: GlucoseSeries,
    tz: tzinfo,
    period: Period,
    unit: Unit,
    min_readings_per_day: int,
    agp_bin_minutes: int | None,
) -> MeterReport:
    c = _Common(series, period, unit)
    enough = meter_sufficiency(series.times, tz, period, min_readings_per_day)
    bin_minutes = agp_bin_minutes or METER_AGP_BIN_MINUTES
    meals = meal_summary(series)
    target = ADA_TARGETS[unit]
    return MeterReport(
        unit=unit,
        period=c.period,
        readings=len(series),
        readings_per_day=len(series) / period.days,
        mean=c.glucose(c.mean_mg_dl),
        sd=c.maybe(c.sd_mg_dl),
        cv_pct=c.cv_pct,
        readings_in_ranges=shares(c.bands),
        limits=c.limits,
        lbgi=c.risk.lbgi,
        hbgi=c.risk.hbgi,
        hypoglycaemia=hypoglycaemia(hypo_counts(series)),
        meals=Meals(
            fasting=TagStats(
                readings=meals.fasting_readings,
                mean=c.maybe(meals.mean_fasting_mg_dl),
                pct_in_target=meals.pct_fasting_in_target,
            ),
            before_meal=TagStats(
                readings=meals.before_meal_readings,
                mean=c.maybe(_tag_mean(series, MealContext.BEFORE_MEAL)),
                pct_in_target=meals.pct_before_in_target,
            ),
            after_meal=TagStats(
                readings=meals.after_meal_readings,
                mean=c.maybe(_tag_mean(series, MealContext.AFTER_MEAL)),
                pct_in_target=meals.pct_after_in_target,
            ),
            pairs=len(meals.pairs),
            pairs_opened_by_fasting=sum(
                1 for p in meals.pairs if p.opened_by is MealContext.FASTING
            ),
            unpaired_after_meal=len(meals.unpaired_after),
            mean_before=c.maybe(meals.mean_before_mg_dl),
            mean_after=c.maybe(meals.mean_after_mg_dl),
            mean_rise=c.maybe(meals.mean_rise_mg_dl),
            targets=MealTargets(
                before_low=target.before_low,
                before_high=target.before_high,
                after_below=target.after_below,
            ),
        ),
        sufficiency=MeterSufficiency(
            required_days=CONSENSUS_DAYS,
            min_readings_per_day=enough.min_readings_per_day,
            required_share_of_days_pct=METER_MIN_SHARE_OF_DAYS_PCT,
            days_with_readings=enough.days_with_readings,
            days_meeting_minimum=enough.days_meeting_minimum,
            met=enough.met,
        ),
        gmi_pct=stats.gmi_pct(c.mean_mg_dl) if enough.met else None,
        agp_bin_minutes=bin_minutes,
        agp=c.agp(agp_bins(series.times, series.values_mg_dl, tz, bin_minutes))
        if enough.met
        else None,
    )


def _tag_mean(series: GlucoseSeries, tag: MealContext) -> float | None:
    if series.meals is None:
        return None
    picked = [
        v for v, m in zip(series.values_mg_dl.tolist(), series.meals, strict=True) if m is tag
    ]
    return sum(picked) / len(picked) if picked else None
