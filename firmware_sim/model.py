"""A seeded glucose model: what a patient's fingersticks look like over days.

Not a physiology simulator for dosing decisions; a plausible, reproducible source of
meter readings. Blood glucose is a baseline plus a dawn rise, a meal excursion for each
meal (carbohydrate-driven, blunted by the insulin bolus), an exercise dip, and noise.
The patient tests at the moments people test: fasting on waking, before and after meals,
at bedtime, each with the meal tag they would tap on the meter.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.vocabulary import MealTag

# Meter reading range: below 20 mg/dL meters show "LO", above 600 "HI".
METER_MIN_MG_DL = 20
METER_MAX_MG_DL = 600
# Peak of the meal excursion after eating (carbohydrate absorption), and how long it lasts.
MEAL_PEAK = timedelta(minutes=60)
MEAL_DURATION = timedelta(hours=4)
# The dawn phenomenon: growth hormone and cortisol raise glucose between about 4 and 8 am.
DAWN_START_H = 4.0
DAWN_PEAK_H = 7.0
# A post-meal test is taken this long after eating (ADA: 1-2 h after the start of a meal).
POST_MEAL_TEST = timedelta(minutes=100)
# A pre-meal test is taken this long before eating.
PRE_MEAL_TEST = timedelta(minutes=10)
# Brisk exercise lowers glucose for a few hours after it.
EXERCISE_EFFECT = timedelta(hours=3)


@dataclass(frozen=True)
class Meal:
    hour: float
    carbs_g: float


@dataclass(frozen=True)
class PatientProfile:
    """How one patient's glucose behaves; defaults are a fairly well controlled type 1."""

    baseline_mg_dl: float = 120.0
    # mg/dL rise per gram of carbohydrate left uncovered by insulin.
    mg_dl_per_carb_g: float = 3.0
    # Fraction of the carbohydrate effect the meal bolus covers.
    bolus_coverage: float = 0.7
    dawn_rise_mg_dl: float = 30.0
    exercise_drop_mg_dl: float = 40.0
    noise_sd_mg_dl: float = 12.0
    meals: tuple[Meal, ...] = (Meal(7.5, 45), Meal(12.5, 70), Meal(19.0, 80))
    # Probability that the patient exercises on a given day (late afternoon).
    exercise_probability: float = 0.3


@dataclass(frozen=True)
class ModelReading:
    """One fingerstick as it happened: the true instant, value and what the patient tapped."""

    at: datetime  # aware
    mg_dl: int
    meal: MealTag | None = None
    carbs_g: float | None = None
    exercise_minutes: int | None = None
    insulin_units: float | None = None


def _meal_effect(hours_since: float, carbs_g: float, profile: PatientProfile) -> float:
    if not 0 <= hours_since <= MEAL_DURATION.total_seconds() / 3600:
        return 0.0
    peak = MEAL_PEAK.total_seconds() / 3600
    # Gamma-like rise and fall: t/peak * exp(1 - t/peak) peaks at 1 when t = peak.
    shape = (hours_since / peak) * math.exp(1 - hours_since / peak)
    return carbs_g * profile.mg_dl_per_carb_g * (1 - profile.bolus_coverage) * shape


def _dawn_effect(hour: float, profile: PatientProfile) -> float:
    if not DAWN_START_H <= hour <= DAWN_PEAK_H + 3:
        return 0.0
    if hour <= DAWN_PEAK_H:
        return profile.dawn_rise_mg_dl * (hour - DAWN_START_H) / (DAWN_PEAK_H - DAWN_START_H)
    return profile.dawn_rise_mg_dl * (1 - (hour - DAWN_PEAK_H) / 3)


class GlucoseModel:
    """Reproducible fingersticks: the same seed gives the same readings."""

    def __init__(self, seed: int, zone: ZoneInfo, profile: PatientProfile | None = None) -> None:
        self.seed = seed
        self.zone = zone
        self.profile = profile or PatientProfile()

    def day(self, day: date) -> list[ModelReading]:
        # Seeded on purpose: the same patient gives the same readings on every run.
        rng = random.Random(f"{self.seed}:{day.isoformat()}")  # noqa: S311
        p = self.profile
        exercise_at = 17.5 if rng.random() < p.exercise_probability else None
        meals = [
            Meal(m.hour + rng.uniform(-0.5, 0.5), m.carbs_g * rng.uniform(0.7, 1.3))
            for m in p.meals
        ]

        def level(hour: float) -> int:
            value = p.baseline_mg_dl + _dawn_effect(hour, p)
            value += sum(_meal_effect(hour - m.hour, m.carbs_g, p) for m in meals)
            if exercise_at is not None and 0 <= hour - exercise_at <= 3:
                value -= p.exercise_drop_mg_dl * (1 - (hour - exercise_at) / 3)
            value += rng.gauss(0, p.noise_sd_mg_dl)
            return round(min(METER_MAX_MG_DL, max(METER_MIN_MG_DL, value)))

        def at(hour: float) -> datetime:
            local = datetime.combine(day, time()) + timedelta(hours=hour)
            return local.replace(second=0, microsecond=0, tzinfo=self.zone)

        out: list[ModelReading] = []
        for index, meal in enumerate(meals):
            before = meal.hour - PRE_MEAL_TEST.total_seconds() / 3600
            tag = MealTag.FASTING if index == 0 else MealTag.BEFORE_MEAL
            bolus = round(meal.carbs_g / 10, 1)  # a 1 U : 10 g insulin-to-carb ratio
            out.append(
                ModelReading(at(before), level(before), tag, round(meal.carbs_g), None, bolus)
            )
            if rng.random() < 0.6:  # patients skip many post-meal tests
                after = meal.hour + POST_MEAL_TEST.total_seconds() / 3600
                out.append(ModelReading(at(after), level(after), MealTag.AFTER_MEAL))
        if exercise_at is not None:
            after_exercise = exercise_at + 1
            out.append(
                ModelReading(at(after_exercise), level(after_exercise), MealTag.CASUAL, None, 45)
            )
        out.append(ModelReading(at(22.5), level(22.5), MealTag.BEDTIME))
        return sorted(out, key=lambda r: r.at)

    def readings(self, first_day: date, days: int) -> Iterator[ModelReading]:
        for offset in range(days):
            yield from self.day(first_day + timedelta(days=offset))
