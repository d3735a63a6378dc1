"""Clinical glucose metrics: pure functions over a `GlucoseSeries`, no I/O.

Definitions follow DESIGN.md "Clinical definitions"; each module cites its source.
`summarize` is the single entry point the command line and the API share.
"""

from core.metrics.agp import AGP_PERCENTILES, DEFAULT_AGP_BIN_MINUTES, AgpBin, agp_bins
from core.metrics.bands import (
    BAND_ORDER,
    THRESHOLDS,
    Band,
    BandPercentages,
    BandThresholds,
    band_percentages,
    classify,
)
from core.metrics.hypo import Episode, HypoCounts, episodes_below, hypo_counts
from core.metrics.meals import ADA_TARGETS, MealPair, MealSummary, meal_summary
from core.metrics.risk import RiskIndices, risk_indices
from core.metrics.series import (
    EmptySeriesError,
    GlucoseSeries,
    MealContext,
    MetricsError,
    Source,
)
from core.metrics.stats import cv_pct, gmi_pct, mean, sd
from core.metrics.sufficiency import (
    DEFAULT_MIN_METER_READINGS_PER_DAY,
    MeterDays,
    cgm_coverage_pct,
    infer_interval,
    meter_days,
)
from core.metrics.summary import Summary, summarize

__all__ = [
    "ADA_TARGETS",
    "AGP_PERCENTILES",
    "BAND_ORDER",
    "DEFAULT_AGP_BIN_MINUTES",
    "DEFAULT_MIN_METER_READINGS_PER_DAY",
    "THRESHOLDS",
    "AgpBin",
    "Band",
    "BandPercentages",
    "BandThresholds",
    "EmptySeriesError",
    "Episode",
    "GlucoseSeries",
    "HypoCounts",
    "MealContext",
    "MealPair",
    "MealSummary",
    "MeterDays",
    "MetricsError",
    "RiskIndices",
    "Source",
    "Summary",
    "agp_bins",
    "band_percentages",
    "cgm_coverage_pct",
    "classify",
    "cv_pct",
    "episodes_below",
    "gmi_pct",
    "hypo_counts",
    "infer_interval",
    "meal_summary",
    "mean",
    "meter_days",
    "risk_indices",
    "sd",
    "summarize",
]
