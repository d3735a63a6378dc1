"""Ambulatory Glucose Profile: percentiles of glucose by local time of day.

All days of the period are folded onto one 24-hour day in the patient's zone and cut into
bins (15 minutes by default, 96 a day); each bin gets the 5th, 25th, 50th, 75th and 95th
percentile of the readings that fall in it. Percentiles use linear interpolation between
order statistics (numpy's default, R's `quantile` type 7).

iglu's `plot_agp` differs in two ways worth knowing when comparing pictures: it first
interpolates each day onto a grid of the sensor interval (`CGMS2DayByDay`, 5 minutes for
Dexcom data) and takes percentiles per grid point, then smooths them with loess
(span 0.3). We bin raw readings instead and leave smoothing to the plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

import numpy as np

from core.metrics._localtime import MINUTES_PER_DAY, local_dates_and_minutes
from core.metrics.series import EmptySeriesError, FloatArray, MetricsError, TimeArray

AGP_PERCENTILES = (5, 25, 50, 75, 95)
# 15-minute bins: with 5-minute CGM over 14 days a bin holds about 42 readings, enough for
# stable 5th/95th percentiles, while still resolving a post-meal rise.
DEFAULT_AGP_BIN_MINUTES = 15
# Fingersticks: hour bins, so a bin of a 14-day logbook holds several readings.
METER_AGP_BIN_MINUTES = 60


@dataclass(frozen=True)
class AgpBin:
    minute_of_day: int  # local start of the bin, 0 = midnight
    readings: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


def agp_bins(
    times: TimeArray,
    values_mg_dl: FloatArray,
    tz: tzinfo,
    bin_minutes: int = DEFAULT_AGP_BIN_MINUTES,
) -> tuple[AgpBin, ...]:
    """Percentiles per time-of-day bin; bins without readings are left out."""
    if MINUTES_PER_DAY % bin_minutes:
        raise MetricsError(f"bin width {bin_minutes} min does not divide a day")
    if values_mg_dl.size == 0:
        raise EmptySeriesError("an AGP needs at least one reading")
    _, minutes = local_dates_and_minutes(times, tz)
    bins = minutes // bin_minutes
    # One sort by (bin, value) for all bins, then each percentile of every bin at once: the
    # linear interpolation between order statistics numpy's `percentile` (and R's type 7)
    # uses, h = (n - 1) p, value = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
    # One numeric key sorts by bin, then value (values are below span, so bins never mix).
    span = float(values_mg_dl.max()) + 1.0
    order = np.argsort(bins * span + values_mg_dl)
    ordered, ordered_bins = values_mg_dl[order], bins[order]
    labels, firsts, counts = np.unique(ordered_bins, return_index=True, return_counts=True)
    columns = []
    for pct in AGP_PERCENTILES:
        h = (counts - 1) * (pct / 100.0)
        below = np.floor(h).astype(np.int64)
        above = np.minimum(below + 1, counts - 1)
        low, high = ordered[firsts + below], ordered[firsts + above]
        columns.append(low + (h - below) * (high - low))
    return tuple(
        AgpBin(int(b) * bin_minutes, int(n), *(float(c[i]) for c in columns))
        for i, (b, n) in enumerate(zip(labels.tolist(), counts.tolist(), strict=True))
    )
