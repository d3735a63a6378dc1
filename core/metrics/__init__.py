"""Clinical glucose metrics: pure functions over a `GlucoseSeries`, no I/O.

Definitions follow DESIGN.md "Clinical definitions"; each module cites its source.
`summarize` is the single entry point the command line and the API share; it returns the
typed report of `core.metrics.report`.
"""

from core.metrics.agp import (
    AGP_PERCENTILES,
    DEFAULT_AGP_BIN_MINUTES,
    METER_AGP_BIN_MINUTES,
    AgpBin,
    agp_bins,
)
from core.metrics.bands import (
    BAND_ORDER,
    THRESHOLDS,
    Band,
    BandPercentages,
    BandThresholds,
    band_percentages,
    classify,
)
from core.metrics.goals import (
    CONSENSUS_GOALS,
    GOAL_OF_BAND,
    GOALS,
    Goal,
    GoalMetric,
    GoalResult,
    check_goals,
)
from core.metrics.hypo import (
    Episode,
    HypoCounts,
    HypoEvent,
    counts_of,
    episodes_below,
    hypo_counts,
    hypo_events,
    meter_hypo_flags,
)
from core.metrics.meals import (
    ADA_TARGETS,
    MealPair,
    MealSummary,
    in_target,
    meal_pairs,
    meal_summary,
)
from core.metrics.period import Period
from core.metrics.report import CgmReport, MeterReport, Report
from core.metrics.risk import RiskIndices, risk_indices
from core.metrics.series import (
    REPORT_SOURCES,
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
    cgm_active_pct,
    infer_interval,
    meter_days,
)
from core.metrics.summary import Summary, cgm_interval, summarize

__all__ = [
    "ADA_TARGETS",
    "AGP_PERCENTILES",
    "BAND_ORDER",
    "CONSENSUS_GOALS",
    "DEFAULT_AGP_BIN_MINUTES",
    "DEFAULT_MIN_METER_READINGS_PER_DAY",
    "GOALS",
    "GOAL_OF_BAND",
    "METER_AGP_BIN_MINUTES",
    "REPORT_SOURCES",
    "THRESHOLDS",
    "AgpBin",
    "Band",
    "BandPercentages",
    "BandThresholds",
    "CgmReport",
    "EmptySeriesError",
    "Episode",
    "GlucoseSeries",
    "Goal",
    "GoalMetric",
    "GoalResult",
    "HypoCounts",
    "HypoEvent",
    "MealContext",
    "MealPair",
    "MealSummary",
    "MeterDays",
    "MeterReport",
    "MetricsError",
    "Period",
    "Report",
    "RiskIndices",
    "Source",
    "Summary",
    "agp_bins",
    "band_percentages",
    "cgm_active_pct",
    "cgm_interval",
    "check_goals",
    "classify",
    "counts_of",
    "cv_pct",
    "episodes_below",
    "gmi_pct",
    "hypo_counts",
    "hypo_events",
    "in_target",
    "infer_interval",
    "meal_pairs",
    "meal_summary",
    "mean",
    "meter_days",
    "meter_hypo_flags",
    "risk_indices",
    "sd",
    "summarize",
]
