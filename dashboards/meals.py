"""Readings around meals, by meal type, for the nutritionist: pure, rows in, pairs out.

Pairing is core's (`core.metrics.meal_summary`: a before-meal reading and the first
after-meal reading 1-3 h later); this module only adds what a nutritionist reads the pairs
by: the meal type, from the local time of the before-meal reading, and the carbohydrates
the meter or the record holds for either reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta

import numpy as np

from core.metrics import (
    Band,
    GlucoseSeries,
    MealContext,
    MealSummary,
    Source,
    classify,
    meal_summary,
)
from core.units import Unit

# Local start time of each meal type, in order; before the first, the day's last type
# applies. Chinese and most European households eat within these windows; they only name
# the pairs, they never decide whether readings pair.
MEAL_TYPES: tuple[tuple[time, str], ...] = (
    (time(4, 0), "breakfast"),
    (time(10, 30), "lunch"),
    (time(15, 0), "dinner"),
    (time(21, 0), "snack"),
)


@dataclass(frozen=True)
class LoggedReading:
    at: datetime  # aware instant
    local: datetime  # the same instant in the patient's zone
    mg_dl: float
    meal: str | None
    carbohydrate_g: float | None
    # As measured: the band of a reading is judged in its own unit (core.metrics.classify).
    value: float | None = None
    unit: Unit = Unit.MG_DL

    @property
    def band(self) -> Band:
        if self.value is None:
            return classify(self.mg_dl, Unit.MG_DL)
        return classify(self.value, self.unit)


@dataclass(frozen=True)
class TypedPair:
    meal_type: str
    before: LoggedReading
    after: LoggedReading

    @property
    def rise_mg_dl(self) -> float:
        return self.after.mg_dl - self.before.mg_dl

    @property
    def carbohydrate_g(self) -> float | None:
        found = self.before.carbohydrate_g
        return found if found is not None else self.after.carbohydrate_g


def meal_type(local: datetime) -> str:
    found = MEAL_TYPES[-1][1]
    for start, name in MEAL_TYPES:
        if local.time() >= start:
            found = name
    return found


def _tag(meal: str | None) -> MealContext | None:
    try:
        return MealContext(meal) if meal else None
    except ValueError:
        return None


def _seconds(instant: np.datetime64) -> int:
    return int(instant.astype("datetime64[s]").astype(np.int64))


def _summarized(
    readings: Sequence[LoggedReading],
) -> tuple[GlucoseSeries, MealSummary, dict[int, LoggedReading]]:
    series = GlucoseSeries.build(
        [r.at for r in readings],
        [r.mg_dl for r in readings],
        Unit.MG_DL,
        Source.METER,
        meals=[_tag(r.meal) for r in readings],
    )
    # Pairs name their readings by instant (whole seconds, as the series holds them).
    by_second = {int(r.at.timestamp()): r for r in readings}
    return series, meal_summary(series), by_second


def typed_pairs(readings: Sequence[LoggedReading]) -> list[TypedPair]:
    """Before/after pairs, oldest first, each with its meal type and carbohydrates."""
    if not readings:
        return []
    _, summary, by_second = _summarized(readings)
    pairs = []
    for pair in summary.pairs:
        before = by_second[_seconds(pair.before_time)]
        after = by_second[_seconds(pair.after_time)]
        pairs.append(TypedPair(meal_type(before.local), before, after))
    return pairs


def unpaired_after_meal(readings: Sequence[LoggedReading]) -> list[LoggedReading]:
    """After-meal readings with no reading before the meal to pair with (core's pairing),
    oldest first: shown too, so an after-meal value is never hidden for want of a pair."""
    if not readings:
        return []
    series, summary, by_second = _summarized(readings)
    return [by_second[_seconds(series.times[i])] for i in summary.unpaired_after]


def rises_by_type(pairs: Sequence[TypedPair]) -> dict[str, list[float]]:
    """Post-meal rises (mg/dL) grouped by meal type, in the order of the day."""
    grouped: dict[str, list[float]] = {name: [] for _, name in MEAL_TYPES}
    for pair in pairs:
        grouped[pair.meal_type].append(pair.rise_mg_dl)
    return grouped


# A meal an app logged (a Nightscout treatment with carbs: the `meal_events` view) pairs the
# reading taken at the meal with the one two hours later: ADA's check "1-2 h after the start
# of the meal", at its far end, where a sensor's post-meal value is read.
AT_MEAL = timedelta(minutes=15)  # the reading at the meal: at most this long before it
AFTER_MEAL = timedelta(hours=2)
AFTER_MEAL_TOLERANCE = timedelta(minutes=15)  # a sensor reads every 1-15 minutes


@dataclass(frozen=True)
class MealEvent:
    at: datetime  # aware instant
    carbohydrate_g: float | None


def with_meal_events(
    readings: Sequence[LoggedReading], events: Sequence[MealEvent]
) -> list[LoggedReading]:
    """The readings, oldest first, with those around each logged meal tagged before / after
    the meal (and the meal's carbohydrates), so they pair like a meter's tagged readings.
    A reading the device already tagged keeps its own tag; a meal without a reading at it
    and one two hours later pairs nothing."""
    out = sorted(readings, key=lambda r: r.at)
    for event in sorted(events, key=lambda e: e.at):
        before = [
            i
            for i, r in enumerate(out)
            if r.meal is None and event.at - AT_MEAL <= r.at <= event.at
        ]
        target = event.at + AFTER_MEAL
        after = [
            i
            for i, r in enumerate(out)
            if r.meal is None and abs(r.at - target) <= AFTER_MEAL_TOLERANCE
        ]
        if not before or not after:
            continue
        b = before[-1]
        a = min(after, key=lambda i: abs(out[i].at - target))
        carbs = event.carbohydrate_g if event.carbohydrate_g else out[b].carbohydrate_g
        out[b] = replace(out[b], meal="before_meal", carbohydrate_g=carbs)
        out[a] = replace(out[a], meal="after_meal")
    return out
