"""Replaying a real patient from the Shanghai T1DM/T2DM datasets (Zhao et al., 2023).

A meter holds fingerstick readings, so the replay takes the `cbg_mg_dl` column (capillary
blood glucose) and derives the meal context a patient would have tapped on the meter from
the recorded meal times: a reading shortly before a meal is `before_meal`, one 1-3 h after a
meal is `after_meal`, an early-morning reading with no meal since the evening is `fasting`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core.vocabulary import MealTag

# A reading this close before a recorded meal was taken for that meal.
BEFORE_MEAL_WINDOW = timedelta(minutes=45)
# ADA's post-prandial window is 1-2 h; patients test late, so pair up to 3 h after.
AFTER_MEAL_FROM = timedelta(hours=1)
AFTER_MEAL_TO = timedelta(hours=3)
# Morning readings before the first meal, after an overnight fast of at least this long.
FASTING_AFTER = timedelta(hours=8)


@dataclass(frozen=True)
class ReplayedReading:
    local_time: datetime  # the patient's wall clock (Shanghai), as the meter shows it
    mg_dl: float
    meal: MealTag | None


def _meal_context(at: datetime, meals: list[datetime]) -> MealTag | None:
    if any(at <= m <= at + BEFORE_MEAL_WINDOW for m in meals):
        previous = [m for m in meals if m < at]
        if at.hour < 10 and (not previous or at - previous[-1] >= FASTING_AFTER):
            return MealTag.FASTING
        return MealTag.BEFORE_MEAL
    if any(at - AFTER_MEAL_TO <= m <= at - AFTER_MEAL_FROM for m in meals):
        return MealTag.AFTER_MEAL
    if at.hour >= 21:
        return MealTag.BEDTIME
    return None


def replay(path: Path) -> Iterator[ReplayedReading]:
    """The fingerstick readings of one Shanghai file, in time order, with meal context."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    meals = sorted(
        datetime.fromisoformat(r["time"])
        for r in rows
        if (r.get("dietary_intake_en") or "").strip()
    )
    for row in rows:
        value = (row.get("cbg_mg_dl") or "").strip()
        if value:
            at = datetime.fromisoformat(row["time"])
            yield ReplayedReading(at, float(value), _meal_context(at, meals))
