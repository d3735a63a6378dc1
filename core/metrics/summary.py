"""`summarize`: every headline metric of one series, the one entry point the CLI and API use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import numpy as np

from core.metrics import stats
from core.metrics._localtime import local_dates_and_minutes
from core.metrics.agp import DEFAULT_AGP_BIN_MINUTES, AgpBin, agp_bins
from core.metrics.bands import band_percentages
from core.metrics.hypo import hypo_counts
from core.metrics.risk import risk_indices
from core.metrics.series import EmptySeriesError, GlucoseSeries, Source
from core.metrics.sufficiency import (
    DEFAULT_MIN_METER_READINGS_PER_DAY,
    calendar_days,
    cgm_coverage_pct,
    infer_interval,
)

# Without two readings a CGM's interval cannot be inferred; 5 minutes is the interval of
# the sensors in common use (Dexcom, Libre 2/3 stream every 1-5 minutes, Libre 1 at 15).
FALLBACK_CGM_INTERVAL = np.timedelta64(5, "m")


@dataclass(frozen=True)
class Summary:
    """Headline metrics of one series. Glucose in mg/dL, shares in percent of readings."""

    readings: int
    control_excluded: int
    start: np.datetime64
    end: np.datetime64
    days: int  # local calendar days from first to last reading, inclusive
    readings_per_day: float
    mean_mg_dl: float
    sd_mg_dl: float | None  # None with fewer than two readings
    cv_pct: float | None
    gmi_pct: float
    pct_very_low: float  # < 54 mg/dL (< 3.0 mmol/L)
    pct_low: float  # 54 <= g < 70 mg/dL (3.0 <= g < 3.9 mmol/L)
    pct_in_range: float  # 70 <= g <= 180 mg/dL (3.9 <= g <= 10.0 mmol/L)
    pct_high: float  # 180 < g <= 250 mg/dL (10.0 < g <= 13.9 mmol/L)
    pct_very_high: float  # > 250 mg/dL (> 13.9 mmol/L)
    lbgi: float
    hbgi: float
    hypo_level1: int
    hypo_level2: int
    hypo_counted: str  # "episodes" (CGM) or "readings" (meter)
    interval_minutes: int | None  # CGM sensor interval used
    cgm_coverage_pct: float | None  # CGM only
    days_meeting_min_readings: int | None  # meter only
    min_readings_per_day: int | None  # meter only
    agp: tuple[AgpBin, ...]


def summarize(
    series: GlucoseSeries,
    tz: tzinfo,
    *,
    interval: np.timedelta64 | None = None,
    min_readings_per_day: int = DEFAULT_MIN_METER_READINGS_PER_DAY,
    agp_bin_minutes: int = DEFAULT_AGP_BIN_MINUTES,
) -> Summary:
    """All headline metrics; `tz` is the patient's zone (days, AGP time of day).

    For CGM data `interval` is the sensor interval; when omitted it is inferred from the
    readings' median spacing.
    """
    n = len(series)
    if n == 0:
        raise EmptySeriesError("no readings to summarize (control solution does not count)")
    mg_dl = series.values_mg_dl
    mean = stats.mean(mg_dl)
    bands = band_percentages(series.values, series.unit)
    risk = risk_indices(mg_dl)
    dates, _ = local_dates_and_minutes(series.times, tz)
    days = calendar_days(dates)

    coverage = days_meeting = min_per_day = interval_minutes = None
    if series.source is Source.CGM:
        if interval is None:
            interval = infer_interval(series.times) if n >= 2 else FALLBACK_CGM_INTERVAL
        interval_minutes = int(interval.astype("timedelta64[m]").astype(np.int64))
        coverage = cgm_coverage_pct(series.times, interval)
    else:
        _, per_day = np.unique(dates, return_counts=True)
        days_meeting = int(np.sum(per_day >= min_readings_per_day))
        min_per_day = min_readings_per_day
    hypo = hypo_counts(series, interval)

    return Summary(
        readings=n,
        control_excluded=series.control_excluded,
        start=series.times[0],
        end=series.times[-1],
        days=days,
        readings_per_day=n / days,
        mean_mg_dl=mean,
        sd_mg_dl=stats.sd(mg_dl),
        cv_pct=stats.cv_pct(mg_dl),
        gmi_pct=stats.gmi_pct(mean),
        pct_very_low=bands.very_low,
        pct_low=bands.low,
        pct_in_range=bands.in_range,
        pct_high=bands.high,
        pct_very_high=bands.very_high,
        lbgi=risk.lbgi,
        hbgi=risk.hbgi,
        hypo_level1=hypo.level1,
        hypo_level2=hypo.level2,
        hypo_counted=hypo.counted,
        interval_minutes=interval_minutes,
        cgm_coverage_pct=coverage,
        days_meeting_min_readings=days_meeting,
        min_readings_per_day=min_per_day,
        agp=agp_bins(series.times, mg_dl, tz, agp_bin_minutes),
    )
