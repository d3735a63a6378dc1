"""Fingerstick readings around meals: pre/post-meal pairs and fasting values.

Pairs. A fasting or before-meal reading opens a pair; the next after-meal reading closes it
when it comes 1 to 3 hours later (the window below), whatever the calendar says, so a late
dinner's pair across midnight is a pair. Readings are taken in time order:
- a later fasting or before-meal reading replaces the open one (it is the reading taken
  nearest the meal);
- an after-meal reading less than 1 hour after the open reading is too early: it is
  unpaired, and the open reading stays open for a later check;
- an after-meal reading more than 3 hours after it is unpaired and closes the open reading
  (that meal's check was missed);
- an after-meal reading with nothing open is unpaired.
Every after-meal reading is in exactly one pair or counted as unpaired, never dropped. The
fasting -> after-breakfast pair is the one Chinese clinics read first (fasting and 2-hour
post-prandial glucose).

Targets are ADA's Standards of Care for adults with diabetes: before meals (and fasting)
80-130 mg/dL (4.4-7.2 mmol/L), after a meal < 180 mg/dL (< 10.0 mmol/L), each reading
judged in the unit it was measured in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics.series import BoolArray, GlucoseSeries, MealContext
from core.units import Unit

# Window after the opening reading in which the after-meal reading must fall: the ADA asks
# for a check 1-2 h after the start of the meal; 3 h allows for a late check while still
# excluding the next meal.
PAIR_MIN_DELAY = np.timedelta64(60, "m")
PAIR_MAX_DELAY = np.timedelta64(180, "m")
OPENERS = (MealContext.FASTING, MealContext.BEFORE_MEAL)


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


def in_target(series: GlucoseSeries) -> BoolArray:
    """Per reading, whether it meets the ADA target of its meal tag, in its own unit:
    fasting and before-meal 80-130 mg/dL, after-meal < 180 mg/dL. Untagged: False."""
    values = series.values
    before = (values >= series.limits(lambda u: ADA_TARGETS[u].before_low)) & (
        values <= series.limits(lambda u: ADA_TARGETS[u].before_high)
    )
    after = values < series.limits(lambda u: ADA_TARGETS[u].after_below)
    tags = series.meals or (None,) * len(series)
    is_after = np.array([t is MealContext.AFTER_MEAL for t in tags], dtype=np.bool_)
    is_before = np.array([t in OPENERS for t in tags], dtype=np.bool_)
    result: BoolArray = (is_before & before) | (is_after & after)
    return result


@dataclass(frozen=True)
class MealPair:
    opened_by: MealContext  # fasting or before_meal
    before_index: int  # index of the opening reading in the series
    after_index: int
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
    unpaired_after: tuple[int, ...]  # indices of after-meal readings in no pair
    before_meal_readings: int
    after_meal_readings: int
    mean_before_mg_dl: float | None  # over paired opening readings
    mean_after_mg_dl: float | None
    mean_rise_mg_dl: float | None
    pct_before_in_target: float | None  # over all before-meal readings
    pct_after_in_target: float | None  # over all after-meal readings
    fasting_readings: int
    mean_fasting_mg_dl: float | None
    pct_fasting_in_target: float | None


def meal_pairs(series: GlucoseSeries) -> tuple[list[MealPair], list[int]]:
    """The pairs (module rules) and the indices of the unpaired after-meal readings."""
    tags = series.meals or (None,) * len(series)
    ok = in_target(series)
    times, mg_dl = series.times, series.values_mg_dl
    pairs: list[MealPair] = []
    unpaired: list[int] = []
    open_at: int | None = None
    for i, tag in enumerate(tags):
        if tag in OPENERS:
            open_at = i
            continue
        if tag is not MealContext.AFTER_MEAL:
            continue
        if open_at is None:
            unpaired.append(i)
            continue
        delay = times[i] - times[open_at]
        if delay < PAIR_MIN_DELAY:
            unpaired.append(i)
        elif delay > PAIR_MAX_DELAY:
            unpaired.append(i)
            open_at = None
        else:
            opener = tags[open_at]
            assert opener is not None
            pairs.append(
                MealPair(
                    opened_by=opener,
                    before_index=open_at,
                    after_index=i,
                    before_time=times[open_at],
                    before_mg_dl=float(mg_dl[open_at]),
                    after_time=times[i],
                    after_mg_dl=float(mg_dl[i]),
                    before_in_target=bool(ok[open_at]),
                    after_in_target=bool(ok[i]),
                )
            )
            open_at = None
    return pairs, unpaired


def meal_summary(series: GlucoseSeries) -> MealSummary:
    """Pairs and summary statistics from the series' meal tags (untagged series: all empty)."""
    tags = series.meals or (None,) * len(series)
    ok = in_target(series)
    mg_dl = series.values_mg_dl
    before = [i for i, t in enumerate(tags) if t is MealContext.BEFORE_MEAL]
    after = [i for i, t in enumerate(tags) if t is MealContext.AFTER_MEAL]
    fasting = [i for i, t in enumerate(tags) if t is MealContext.FASTING]
    pairs, unpaired = meal_pairs(series)
    return MealSummary(
        pairs=tuple(pairs),
        unpaired_after=tuple(unpaired),
        before_meal_readings=len(before),
        after_meal_readings=len(after),
        mean_before_mg_dl=_mean([p.before_mg_dl for p in pairs]),
        mean_after_mg_dl=_mean([p.after_mg_dl for p in pairs]),
        mean_rise_mg_dl=_mean([p.rise_mg_dl for p in pairs]),
        pct_before_in_target=_pct([bool(ok[i]) for i in before]),
        pct_after_in_target=_pct([bool(ok[i]) for i in after]),
        fasting_readings=len(fasting),
        mean_fasting_mg_dl=_mean([float(mg_dl[i]) for i in fasting]),
        pct_fasting_in_target=_pct([bool(ok[i]) for i in fasting]),
    )


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def _pct(flags: list[bool]) -> float | None:
    return 100.0 * sum(flags) / len(flags) if flags else None
