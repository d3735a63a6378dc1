"""The consensus goals for CGM data, and which of them a period meets.

International Consensus on Time in Range (Battelino T. et al., Diabetes Care 42(8), 2019,
doi:10.2337/dci19-0028, Table 2, adults with type 1 or type 2 diabetes): time in range
(70-180 mg/dL) > 70 %; time below range (< 70 mg/dL, very low included) < 4 %; time very low
(< 54 mg/dL) < 1 %; time above range (> 180 mg/dL, very high included) < 25 %; time very
high (> 250 mg/dL) < 5 %. Glycaemic variability: CV <= 36 % (Danne T. et al., Diabetes Care
40(12), 2017; the same consensus). The goals are defined on sensor time; a fingerstick
report does not carry them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from core.metrics.bands import Band, BandPercentages

Comparison = Literal["<", ">", "<="]
_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
}


class GoalMetric(StrEnum):
    TIME_IN_RANGE = "time_in_range"
    TIME_BELOW_RANGE = "time_below_range"
    TIME_VERY_LOW = "time_very_low"
    TIME_ABOVE_RANGE = "time_above_range"
    TIME_VERY_HIGH = "time_very_high"
    CV = "cv"


@dataclass(frozen=True)
class Goal:
    metric: GoalMetric
    comparison: Comparison
    target_pct: float

    def met(self, value_pct: float) -> bool:
        return _COMPARE[self.comparison](value_pct, self.target_pct)


CONSENSUS_GOALS: tuple[Goal, ...] = (
    Goal(GoalMetric.TIME_IN_RANGE, ">", 70.0),
    Goal(GoalMetric.TIME_BELOW_RANGE, "<", 4.0),
    Goal(GoalMetric.TIME_VERY_LOW, "<", 1.0),
    Goal(GoalMetric.TIME_ABOVE_RANGE, "<", 25.0),
    Goal(GoalMetric.TIME_VERY_HIGH, "<", 5.0),
    Goal(GoalMetric.CV, "<=", 36.0),
)
GOALS: dict[GoalMetric, Goal] = {g.metric: g for g in CONSENSUS_GOALS}

# The goal shown beside each band of the five-band bar: the low and high bands carry the
# cumulative goals (below 70 includes below 54; above 180 includes above 250).
GOAL_OF_BAND: dict[Band, Goal] = {
    Band.VERY_LOW: GOALS[GoalMetric.TIME_VERY_LOW],
    Band.LOW: GOALS[GoalMetric.TIME_BELOW_RANGE],
    Band.IN_RANGE: GOALS[GoalMetric.TIME_IN_RANGE],
    Band.HIGH: GOALS[GoalMetric.TIME_ABOVE_RANGE],
    Band.VERY_HIGH: GOALS[GoalMetric.TIME_VERY_HIGH],
}


@dataclass(frozen=True)
class GoalResult:
    goal: Goal
    value_pct: float | None  # None when the metric is undefined (CV of one reading)

    @property
    def met(self) -> bool | None:
        return None if self.value_pct is None else self.goal.met(self.value_pct)


def goal_values(bands: BandPercentages, cv_pct: float | None) -> dict[GoalMetric, float | None]:
    return {
        GoalMetric.TIME_IN_RANGE: bands.in_range,
        GoalMetric.TIME_BELOW_RANGE: bands.below_range,
        GoalMetric.TIME_VERY_LOW: bands.very_low,
        GoalMetric.TIME_ABOVE_RANGE: bands.above_range,
        GoalMetric.TIME_VERY_HIGH: bands.very_high,
        GoalMetric.CV: cv_pct,
    }


def check_goals(bands: BandPercentages, cv_pct: float | None) -> tuple[GoalResult, ...]:
    """Each consensus goal with the period's value and whether it is met."""
    values = goal_values(bands, cv_pct)
    return tuple(GoalResult(goal, values[goal.metric]) for goal in CONSENSUS_GOALS)
