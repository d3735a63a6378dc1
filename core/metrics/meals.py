"""Fingerstick readings around meals: pre/post-meal pairs and fasting values.

A before-meal reading is paired with the first after-meal reading taken 1 to 3 hours later
and before the next before-meal reading (which starts the next meal); each after-meal
reading joins at most one pair. Targets are ADA's Standards of Care for adults with
diabetes: before meals (and fasting) 80-130 mg/dL (4.4-7.2 mmol/L), peak after a meal
< 180 mg/dL (< 10.0 mmol/L), judged in the unit the meter measured in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics.series import GlucoseSeries, MealContext
from core.units import Unit

# Window after a before-meal reading in which the after-meal reading must fall: the ADA
# asks for a check 1-2 h after the start of the meal; 3 h allows for a late check while
# still excluding the next meal.
PAIR_MIN_DELAY = np.timedelta64(60, "m")
PAIR_MAX_DELAY = np.timedelta64(180, "m")


@dataclass(frozen=True)
class AdaTargets:
    before_low: float  # before-meal and fasting target, inclusive
    before_high: float
    after_below: float  # after-meal target, exclusive


# ADA's numbers in each unit, not conversions of each other (see bands.THRESHOLDS).
ADA_TARGETS: dict[Unit, AdaTargets] = {
    Unit.MG_DL: AdaTargets(before_low=80.0, before_high=130.0, after_below=180.0),
    Unit.MMOL_L: AdaTargets(before_low=4.4, before_high=7.2, after_below=10.0),
}


@dataclass(frozen=True)
class MealPair:
    before_time: np.datetime64
    before_mg_dl: float
    after_time: np.datetime64
    after_mg_dl: float
    before_in_target: bool
    after_in_target: bool

    @property
    def rise_mg_dl(self) -> float:
        return self.after_mg_dl - self.before_mg_dl


@dataclass(frozen=True)
class MealSummary:
    pairs: tuple[MealPair, ...]
    before_meal_readings: int
    after_meal_readings: int
    mean_before_mg_dl: float | None  # over paired readings
    mean_after_mg_dl: float | None
    mean_rise_mg_dl: float | None
    pct_before_in_target: float | None  # over all before-meal readings
    pct_after_in_target: float | None  # over all after-meal readings
    fasting_readings: int
    mean_fasting_mg_dl: float | None
    pct_fasting_in_target: float | None


def meal_summary(series: GlucoseSeries) -> MealSummary:
    """Pairs and summary statistics from the series' meal tags (untagged series: all empty)."""
    meals = series.meals or (None,) * len(series)
    tags = np.array([m.value if m is not None else "" for m in meals], dtype=object)
    target = ADA_TARGETS[series.unit]
    values, mg_dl, times = series.values, series.values_mg_dl, series.times

    def before_ok(i: int) -> bool:
        return bool(target.before_low <= values[i] <= target.before_high)

    def after_ok(i: int) -> bool:
        return bool(values[i] < target.after_below)

    before = np.flatnonzero(tags == MealContext.BEFORE_MEAL.value).tolist()
    after = np.flatnonzero(tags == MealContext.AFTER_MEAL.value).tolist()
    fasting = np.flatnonzero(tags == MealContext.FASTING.value).tolist()

    pairs: list[MealPair] = []
    used: set[int] = set()
    for k, b in enumerate(before):
        next_meal = times[before[k + 1]] if k + 1 < len(before) else None
        for a in after:
            delay = times[a] - times[b]
            if a in used or delay < PAIR_MIN_DELAY:
                continue
            if delay > PAIR_MAX_DELAY or (next_meal is not None and times[a] >= next_meal):
                break
            used.add(a)
            pairs.append(
                MealPair(
                    times[b], float(mg_dl[b]), times[a], float(mg_dl[a]), before_ok(b), after_ok(a)
                )
            )
            break

    return MealSummary(
        pairs=tuple(pairs),
        before_meal_readings=len(before),
        after_meal_readings=len(after),
        mean_before_mg_dl=_mean([p.before_mg_dl for p in pairs]),
        mean_after_mg_dl=_mean([p.after_mg_dl for p in pairs]),
        mean_rise_mg_dl=_mean([p.rise_mg_dl for p in pairs]),
        pct_before_in_target=_pct([before_ok(i) for i in before]),
        pct_after_in_target=_pct([after_ok(i) for i in after]),
        fasting_readings=len(fasting),
        mean_fasting_mg_dl=_mean([float(mg_dl[i]) for i in fasting]),
        pct_fasting_in_target=_pct([before_ok(i) for i in fasting]),
    )


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _pct(flags: list[bool]) -> float | None:
    return 100.0 * sum(flags) / len(flags) if flags else None
