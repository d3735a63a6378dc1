"""Time-dependent metrics: hypoglycaemia episodes, data sufficiency, AGP, meal pairs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core.metrics import (
    GlucoseSeries,
    MealContext,
    Period,
    Source,
    agp_bins,
    cgm_active_pct,
    episodes_below,
    hypo_counts,
    infer_interval,
    meal_summary,
    meter_days,
    summarize,
)
from core.units import Unit

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
FIVE = np.timedelta64(5, "m")


def cgm(values: Sequence[float], minutes: int = 5, unit: Unit = Unit.MG_DL) -> GlucoseSeries:
    times = [T0 + timedelta(minutes=minutes * i) for i in range(len(values))]
    return GlucoseSeries.build(times, values, unit, Source.CGM)


def episodes(values: Sequence[float], threshold: float = 70.0) -> int:
    s = cgm(values)
    return len(episodes_below(s.times, s.values, threshold, FIVE))


# --- episodes (consensus: >= 15 min below to start, >= 15 min at/above to end) -------------


def test_three_five_minute_readings_make_an_episode() -> None:
    assert episodes([100, 65, 65, 65, 100, 100, 100]) == 1


def test_ten_minutes_below_is_not_an_episode() -> None:
    assert episodes([100, 65, 65, 100, 100, 100]) == 0


def test_a_short_rise_does_not_end_an_episode() -> None:
    # 15 min low, 10 min above, 15 min low again: one episode
    assert episodes([65, 65, 65, 90, 90, 65, 65, 65]) == 1


def test_fifteen_minutes_above_ends_it_and_a_new_low_is_a_new_episode() -> None:
    assert episodes([65, 65, 65, 90, 90, 90, 65, 65, 65]) == 2


def test_one_fifteen_minute_reading_is_fifteen_minutes() -> None:
    s = cgm([100, 65, 100, 100], minutes=15)
    assert len(episodes_below(s.times, s.values, 70.0, np.timedelta64(15, "m"))) == 1


def test_a_gap_longer_than_45_minutes_splits_a_run() -> None:
    times = [T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=60)]
    s = GlucoseSeries.build(times, [65, 65, 65], Unit.MG_DL, Source.CGM)
    assert episodes_below(s.times, s.values, 70.0, FIVE) == []


def test_episode_fields() -> None:
    s = cgm([100, 66, 60, 64, 100, 100, 100])
    (e,) = episodes_below(s.times, s.values, 70.0, FIVE)
    assert e.start == s.times[1] and e.end == s.times[3] and e.nadir == 60


def test_level1_and_level2_events_are_not_double_counted() -> None:
    deep = [65, 50, 50, 50, 65, 100, 100, 100]  # below 54 for 15 min: level 2 only
    mild = [65, 65, 65, 100, 100, 100]  # never below 54: level 1
    counts = hypo_counts(cgm(deep + mild), FIVE)
    assert (counts.level1, counts.level2, counts.counted) == (1, 1, "events")


def test_mmol_episodes_use_mmol_thresholds() -> None:
    # 3.9 mmol/L is not low although 3.9 x 18.016 > 70: no episode
    assert hypo_counts(cgm([3.9, 3.9, 3.9, 3.9], unit=Unit.MMOL_L), FIVE).level1 == 0
    assert hypo_counts(cgm([3.8, 3.8, 3.8, 5.0], unit=Unit.MMOL_L), FIVE).level1 == 1


def test_meter_counts_readings() -> None:
    times = [T0 + timedelta(hours=h) for h in range(5)]
    s = GlucoseSeries.build(times, [50, 54, 69.9, 70, 120], Unit.MG_DL, Source.METER)
    counts = hypo_counts(s)
    assert (counts.level1, counts.level2, counts.counted) == (2, 1, "readings")


# --- data sufficiency ------------------------------------------------------------------------


def test_interval_is_inferred_from_the_median_spacing() -> None:
    assert infer_interval(cgm([100] * 10, minutes=15).times) == np.timedelta64(15, "m")


def test_active_time_counts_expected_readings_over_the_period() -> None:
    hour = Period(T0, T0 + timedelta(hours=1))  # a 5-minute sensor sends 60 / 5 = 12
    full = cgm([100.0] * 12)  # 08:00..08:55 every 5 min
    assert cgm_active_pct(full.times, FIVE, hour) == 100.0
    half = GlucoseSeries.build(
        [T0 + timedelta(minutes=10 * i) for i in range(6)], [100.0] * 6, Unit.MG_DL, Source.CGM
    )
    assert cgm_active_pct(half.times, FIVE, hour) == pytest.approx(100 * 6 / 12)


def test_meter_days_use_the_patients_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    # 23:30 and 00:30 Shanghai time on consecutive local days, though one UTC day
    local = [
        datetime(2024, 3, 1, 23, 30, tzinfo=shanghai),
        datetime(2024, 3, 2, 0, 30, tzinfo=shanghai),
    ]
    local += [datetime(2024, 3, 2, h, 0, tzinfo=shanghai) for h in (7, 12, 18)]
    s = GlucoseSeries.build(local, [100.0] * 5, Unit.MG_DL, Source.METER)
    d = meter_days(s.times, shanghai, min_per_day=4)
    assert (d.days, d.days_with_readings, d.days_meeting_minimum) == (2, 2, 1)
    summary = summarize(s, shanghai, min_readings_per_day=4)
    assert summary.source is Source.METER
    # no period given: the two local days the readings fall on
    assert summary.period.days == 2.0 and summary.readings_per_day == 2.5
    assert summary.sufficiency.days_meeting_minimum == 1


# --- AGP ------------------------------------------------------------------------------------


def r_type7(sorted_values: list[float], p: float) -> float:
    """R's default quantile (type 7), written out."""
    h = (len(sorted_values) - 1) * p
    lo = int(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def test_agp_percentiles_per_bin_in_local_time() -> None:
    ny = ZoneInfo("America/New_York")
    rng = np.random.default_rng(7)
    # 08:00-08:14 New York time on ten days, across the March 2024 DST change
    times, values = [], []
    for day in range(5, 15):
        for minute in (0, 5, 10):
            times.append(datetime(2024, 3, day, 8, minute, tzinfo=ny))
            values.append(float(rng.integers(60, 300)))
    s = GlucoseSeries.build(times, values, Unit.MG_DL, Source.CGM)
    (b,) = agp_bins(s.times, s.values_mg_dl, ny, bin_minutes=15)
    assert b.minute_of_day == 8 * 60 and b.readings == 30
    ordered = sorted(values)
    expected = [r_type7(ordered, p / 100) for p in (5, 25, 50, 75, 95)]
    assert [b.p5, b.p25, b.p50, b.p75, b.p95] == pytest.approx(expected)


# --- meals ----------------------------------------------------------------------------------


def meter_with_meals(entries: list[tuple[int, float, MealContext | None]]) -> GlucoseSeries:
    times = [T0 + timedelta(minutes=m) for m, _, _ in entries]
    return GlucoseSeries.build(
        times, [v for _, v, _ in entries], Unit.MG_DL, Source.METER, meals=[c for *_, c in entries]
    )


def test_before_meal_pairs_with_the_after_meal_reading_1_to_3_hours_later() -> None:
    before, after, fasting = MealContext.BEFORE_MEAL, MealContext.AFTER_MEAL, MealContext.FASTING
    s = meter_with_meals([
        (0, 95.0, fasting),
        (30, 110.0, before),   # breakfast: the reading nearest the meal opens the pair
        (60, 150.0, after),    # 30 min later: too early, unpaired
        (150, 170.0, after),   # 2 h later: the pair
        (300, 140.0, before),  # lunch
        (600, 200.0, after),   # 5 h later: too late, unpaired
        (700, 135.0, None),
    ])  # fmt: skip
    m = meal_summary(s)
    assert [(p.before_mg_dl, p.after_mg_dl) for p in m.pairs] == [(110.0, 170.0)]
    assert m.pairs[0].rise_mg_dl == 60.0
    assert [s.values[i] for i in m.unpaired_after] == [150.0, 200.0]
    assert m.before_meal_readings == 2 and m.after_meal_readings == 3
    assert m.pct_before_in_target == 50.0  # 110 yes, 140 no (80-130)
    assert m.pct_after_in_target == pytest.approx(200 / 3)  # 150, 170 yes; 200 no (< 180)
    assert (m.fasting_readings, m.mean_fasting_mg_dl, m.pct_fasting_in_target) == (1, 95.0, 100.0)


def test_an_after_meal_reading_past_the_next_meal_is_not_paired() -> None:
    before, after = MealContext.BEFORE_MEAL, MealContext.AFTER_MEAL
    s = meter_with_meals([(0, 100.0, before), (60, 100.0, before), (150, 160.0, after)])
    (pair,) = meal_summary(s).pairs
    assert pair.before_time == s.times[1]


def test_untagged_series_has_no_pairs() -> None:
    m = meal_summary(cgm([100.0, 110.0]))
    assert m.pairs == () and m.mean_rise_mg_dl is None and m.pct_before_in_target is None
