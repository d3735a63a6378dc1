"""Issue 13, acceptance 2: each case the issue names, with the expected values worked out by
hand in the test from the definitions (the arithmetic is in the comments), never from the
code under test. Pure: no database (the API versions are in tests/analytics).

Definitions: DESIGN.md "Clinical definitions"; hypoglycaemia events per Danne et al.,
Diabetes Care 40(12), 2017 and Battelino et al., Lancet Diabetes Endocrinol 11(1), 2023
(level 1: >= 15 min < 70 mg/dL, ending with >= 15 min >= 70; level 2 when it holds >= 15 min
< 54; a reading stands for one sensor interval); bands per Battelino 2019 in the unit each
reading was measured in; ADA targets before meals 80-130 mg/dL (4.4-7.2 mmol/L), after
< 180 (10.0).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from core.days import ZoneHistory, ZonePeriod, daily_summaries
from core.metrics import (
    GlucoseSeries,
    MealContext,
    Period,
    Source,
    band_percentages,
    hypo_counts,
    in_target,
    summarize,
)
from core.units import Unit
from core.wallclock import WallClock, WallTime, resolve
from ingest.alerts.rules import Kind, Reading, Thresholds, level_of

FIVE = np.timedelta64(5, "m")
SHANGHAI = "Asia/Shanghai"
ALWAYS = datetime.min.replace(tzinfo=UTC)


def cgm_at(start: datetime, values: Sequence[float]) -> GlucoseSeries:
    """5-minute CGM readings from `start`."""
    times = [start + timedelta(minutes=5 * i) for i in range(len(values))]
    return GlucoseSeries.build(times, list(values), Unit.MG_DL, Source.CGM)


# --- the short dip: a level-1 event ----------------------------------------------------------


def test_a_short_dip_below_54_leaves_a_level_1_event() -> None:
    # 60, 50, 53, 66 five minutes apart: 4 readings below 70 = (15 + 5) min = 20 min >= 15,
    # an event; 50, 53 below 54 = (5 + 5) min = 10 min < 15: it never became level 2.
    # The three readings of 100 after it are 15 min >= 70: the event ends.
    s = cgm_at(datetime(2026, 1, 5, 8, tzinfo=UTC), [100, 100, 100, 60, 50, 53, 66, 100, 100, 100])
    counts = hypo_counts(s, FIVE)
    assert (counts.level1, counts.level2, counts.counted) == (1, 0, "events")


def test_a_dip_that_holds_15_minutes_below_54_is_one_level_2_event() -> None:
    # 60, 50, 52, 53, 66: below 54 for 50, 52, 53 = (10 + 5) = 15 min: level 2, counted once.
    s = cgm_at(datetime(2026, 1, 5, 8, tzinfo=UTC), [100, 60, 50, 52, 53, 66, 100, 100, 100])
    counts = hypo_counts(s, FIVE)
    assert (counts.level1, counts.level2) == (0, 1)


# --- events across local midnight -----------------------------------------------------------

NIGHT = date(2026, 2, 10)  # the evening; the event crosses into 2026-02-11


def _night(before: Sequence[float], after: Sequence[float]) -> GlucoseSeries:
    """5-minute CGM in Shanghai from 20:00 on NIGHT to 04:00 the next day, all 100 mg/dL
    except the lows: `before` ending at 23:55, `after` starting at 00:00."""
    tz = ZoneInfo(SHANGHAI)
    midnight = datetime(2026, 2, 11, tzinfo=tz)
    start = midnight - timedelta(hours=4)
    values = [100.0] * (8 * 12)  # 8 hours of 12 readings
    first_low = 4 * 12 - len(before)  # index of 23:55 is 47
    for k, v in enumerate([*before, *after]):
        values[first_low + k] = v
    return cgm_at(start.astimezone(UTC), values)


@pytest.mark.parametrize(
    ("before", "after", "level"),
    [
        # 3 + 3 readings of 60: one event 23:45-00:10 = (25 + 5) = 30 min, level 1.
        # Cut at midnight each half is 15 min and would count on both days.
        ([60.0] * 3, [60.0] * 3, 1),
        # 2 + 2 readings of 50: one event 23:50-00:05 = 20 min, below 54 for those same
        # 20 min: level 2. Each half alone is 10 min and would count on neither day.
        ([50.0] * 2, [50.0] * 2, 2),
        # 2 + 4 readings, 60 then 50: one event 23:50-00:15 = 30 min; below 54 00:00-00:15 =
        # (15 + 5) = 20 min: level 2. Cut at midnight it would count on the second day only.
        ([60.0] * 2, [50.0] * 4, 2),
    ],
)
def test_an_event_across_midnight_belongs_to_the_day_it_starts(
    before: list[float], after: list[float], level: int
) -> None:
    s = _night(before, after)
    history = ZoneHistory.single(SHANGHAI)
    first, second = daily_summaries(s, history, NIGHT, NIGHT + timedelta(days=1))
    assert first.hypo is not None and second.hypo is not None
    started = (1, 0) if level == 1 else (0, 1)
    assert (first.hypo.level1, first.hypo.level2) == started
    assert (second.hypo.level1, second.hypo.level2) == (0, 0)
    # The period's count is the sum of the days'.
    report = summarize(s, ZoneInfo(SHANGHAI))
    assert (report.hypoglycaemia.level1, report.hypoglycaemia.level2) == started


# --- coverage over the requested period -----------------------------------------------------


def test_seven_full_days_of_cgm_over_fourteen_asked_for_are_50_percent_active() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    s = cgm_at(start, [120.0] * (7 * 288))  # 7 days x 288 five-minute readings
    report = summarize(s, UTC, period=Period(start, start + timedelta(days=14)))
    assert report.source is Source.CGM
    # A 5-minute sensor sends 14 x 288 = 4032 readings in 14 days; 2016 came: 50 %.
    assert report.sufficiency.active_pct == 50.0
    assert report.sufficiency.met is False  # 50 % < 70 %
    assert report.period.days == 14.0
    # The same readings asked for over their own 7 days: 2016 / 2016.
    week = summarize(s, UTC, period=Period(start, start + timedelta(days=7)))
    assert week.sufficiency.active_pct == 100.0
    assert week.sufficiency.met is False  # 7 days < 14


# --- a patient with readings in both units --------------------------------------------------


def test_a_mixed_unit_patient_is_classified_reading_by_reading() -> None:
    # Each reading in its own unit (consensus: mmol/L 3.0 / 3.9 / 10.0 / 13.9, mg/dL
    # 54 / 70 / 180 / 250; very low < the first, low < the second, high > the third,
    # very high > the fourth):
    #   3.0 mmol/L low   3.9 in range   10.0 in range   13.9 high
    #   54 mg/dL   low   70  in range   180  in range   250  high
    # 8 readings: low 2 (25 %), in range 4 (50 %), high 2 (25 %), very low / very high 0.
    # Converted to mg/dL first, 10.0 would be 180.16 (high) and 13.9 250.4 (very high).
    values = [3.0, 3.9, 10.0, 13.9, 54.0, 70.0, 180.0, 250.0]
    units = [Unit.MMOL_L] * 4 + [Unit.MG_DL] * 4
    times = [datetime(2026, 4, 1, 6, tzinfo=UTC) + timedelta(hours=2 * i) for i in range(8)]
    s = GlucoseSeries.build(times, values, units, Source.METER)
    bands = band_percentages(s)
    assert (bands.very_low, bands.low, bands.in_range, bands.high, bands.very_high) == (
        0.0, 25.0, 50.0, 25.0, 0.0,
    )  # fmt: skip
    # Fingerstick lows count readings: 3.0 mmol/L and 54 mg/dL are level 1 (>= 3.0 / 54).
    counts = hypo_counts(s)
    assert (counts.level1, counts.level2, counts.counted) == (2, 0, "readings")


def test_mixed_unit_meal_targets_are_judged_in_each_readings_unit() -> None:
    # Before meals 4.4-7.2 mmol/L, 80-130 mg/dL: 4.4, 7.2 mmol/L and 80, 130 mg/dL all meet
    # it (4.4 mmol/L is 79.3 mg/dL, "below target" if converted). After meals < 10.0 mmol/L,
    # < 180 mg/dL: 10.0 mmol/L and 180 mg/dL both miss it, 9.9 mmol/L meets it.
    before, after = MealContext.BEFORE_MEAL, MealContext.AFTER_MEAL
    rows = [
        (4.4, Unit.MMOL_L, before, True),
        (7.2, Unit.MMOL_L, before, True),
        (80.0, Unit.MG_DL, before, True),
        (130.0, Unit.MG_DL, before, True),
        (10.0, Unit.MMOL_L, after, False),
        (180.0, Unit.MG_DL, after, False),
        (9.9, Unit.MMOL_L, after, True),
    ]
    times = [datetime(2026, 4, 1, tzinfo=UTC) + timedelta(hours=5 * i) for i in range(len(rows))]
    s = GlucoseSeries.build(
        times, [r[0] for r in rows], [r[1] for r in rows], Source.METER, meals=[r[2] for r in rows]
    )
    assert in_target(s).tolist() == [r[3] for r in rows]


@pytest.mark.parametrize(
    ("value", "unit", "level"),
    [
        (3.0, Unit.MMOL_L, 1),  # not < 3.0: level 1, although 54.05 mg/dL
        (2.9, Unit.MMOL_L, 2),
        (3.9, Unit.MMOL_L, 0),  # not < 3.9: no low alert, although 70.26 mg/dL
        (54.0, Unit.MG_DL, 1),
        (53.9, Unit.MG_DL, 2),
        (70.0, Unit.MG_DL, 0),
    ],
)
def test_the_alert_rules_compare_in_the_readings_unit(value: float, unit: Unit, level: int) -> None:
    """Checked, not rewritten (ingest/alerts/rules.py): the consensus low levels, default
    thresholds, in the unit each reading was measured in."""
    at = datetime(2026, 4, 1, tzinfo=UTC)
    factor = 18.016 if unit is Unit.MMOL_L else 1.0
    reading = Reading(at, at, value, unit, value * factor)
    assert level_of(Kind.LOW, reading, Thresholds()) == level


# --- pre/post-meal pairs --------------------------------------------------------------------


def test_fasting_opens_a_pair_and_a_pair_across_midnight_stays_whole() -> None:
    tz = ZoneInfo(SHANGHAI)
    day = date(2026, 5, 6)
    fasting, before, after = MealContext.FASTING, MealContext.BEFORE_MEAL, MealContext.AFTER_MEAL

    def at(hour: int, minute: int = 0, next_day: bool = False) -> datetime:
        d = day + timedelta(days=1) if next_day else day
        return datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz)

    rows = [
        (at(7), 100.0, fasting),  # opens
        (at(9), 160.0, after),  # 2 h after fasting: pair 1, rise 60
        (at(12), 110.0, before),  # opens
        (at(13, 30), 150.0, after),  # 1.5 h: pair 2, rise 40
        (at(16), 190.0, after),  # nothing open: unpaired
        (at(22, 30), 120.0, before),  # opens, late dinner
        (at(0, 30, next_day=True), 170.0, after),  # 2 h later, next day: pair 3, rise 50
    ]
    s = GlucoseSeries.build(
        [r[0] for r in rows], [r[1] for r in rows], Unit.MG_DL, Source.METER,
        meals=[r[2] for r in rows],
    )  # fmt: skip
    report = summarize(s, tz)
    assert report.source is Source.METER
    meals = report.meals
    assert (meals.pairs, meals.pairs_opened_by_fasting, meals.unpaired_after_meal) == (3, 1, 1)
    assert meals.mean_rise == pytest.approx((60 + 40 + 50) / 3)
    # Each pair belongs to the day of its opening reading: all three to `day`.
    first, second = daily_summaries(s, ZoneHistory.single(SHANGHAI), day, day + timedelta(days=1))
    assert (first.meal_pairs, first.unpaired_after_meal) == (3, 1)
    assert first.mean_rise_mg_dl == pytest.approx(50.0)
    assert (second.meal_pairs, second.unpaired_after_meal) == (0, 0)


# --- local days on travel days --------------------------------------------------------------


def _hours(history: ZoneHistory, first: date, last: date) -> list[float]:
    """Each day's hours, and a check that a reading every 30 minutes lands in exactly the
    day whose stretches hold it (2 readings per hour of the day)."""
    span_start = history.day_bounds(first).start
    span_end = history.day_bounds(last).end
    times = []
    at = span_start
    while at < span_end:
        times.append(at)
        at += timedelta(minutes=30)
    s = GlucoseSeries.build(times, [100.0] * len(times), Unit.MG_DL, Source.METER)
    days = daily_summaries(s, history, first, last)
    for d in days:
        assert d.readings == round(d.hours * 2), d.date
    return [d.hours for d in days]


def test_travel_east_new_york_to_tokyo() -> None:
    # Zone change at 2026-07-11 02:00 UTC (22:00 EDT on the 10th, 11:00 JST on the 11th).
    # 10 July: from 00:00 EDT = 04:00 UTC to the change, 02:00 UTC: 22 h.
    # 11 July: from the change to 00:00 JST on the 12th = 15:00 UTC on the 11th: 13 h.
    # (Issue 13 saw 24 h and 11 h.) 9 July in New York and 12 July in Tokyo: 24 h each.
    history = ZoneHistory(
        [ZonePeriod(ALWAYS, "America/New_York"),
         ZonePeriod(datetime(2026, 7, 11, 2, tzinfo=UTC), "Asia/Tokyo")]
    )  # fmt: skip
    assert _hours(history, date(2026, 7, 9), date(2026, 7, 12)) == [24.0, 22.0, 13.0, 24.0]
    (stretch,) = history.day_intervals(date(2026, 7, 10))
    assert (stretch.start, stretch.end) == (
        datetime(2026, 7, 10, 4, tzinfo=UTC),
        datetime(2026, 7, 11, 2, tzinfo=UTC),
    )


def test_travel_west_tokyo_to_new_york() -> None:
    # Zone change at 2026-07-20 10:00 UTC (19:00 JST, 06:00 EDT, both on the 20th).
    # 20 July: from 00:00 JST = 15:00 UTC on the 19th to 00:00 EDT on the 21st = 04:00 UTC
    # on the 21st: 37 h (24 + 13). 19 July in Tokyo and 21 July in New York: 24 h.
    history = ZoneHistory(
        [ZonePeriod(ALWAYS, "Asia/Tokyo"),
         ZonePeriod(datetime(2026, 7, 20, 10, tzinfo=UTC), "America/New_York")]
    )  # fmt: skip
    assert _hours(history, date(2026, 7, 19), date(2026, 7, 21)) == [24.0, 37.0, 24.0]


def test_over_the_date_line_tokyo_to_honolulu_a_date_comes_twice() -> None:
    # Zone change at 2026-08-01 16:00 UTC: 01:00 JST on 2 Aug, 06:00 HST on 1 Aug.
    # 1 Aug: in Tokyo 15:00 UTC 31 Jul - 15:00 UTC 1 Aug (24 h), then in Honolulu from the
    #   change to 00:00 HST 2 Aug = 10:00 UTC 2 Aug (18 h): 42 h in two stretches.
    # 2 Aug: in Tokyo 15:00 - 16:00 UTC 1 Aug (1 h), then in Honolulu 10:00 UTC 2 Aug -
    #   10:00 UTC 3 Aug (24 h): 25 h in two stretches.
    history = ZoneHistory(
        [ZonePeriod(ALWAYS, "Asia/Tokyo"),
         ZonePeriod(datetime(2026, 8, 1, 16, tzinfo=UTC), "Pacific/Honolulu")]
    )  # fmt: skip
    assert _hours(history, date(2026, 8, 1), date(2026, 8, 2)) == [42.0, 25.0]
    stretches = history.day_intervals(date(2026, 8, 1))
    assert [(s.start, s.end) for s in stretches] == [
        (datetime(2026, 7, 31, 15, tzinfo=UTC), datetime(2026, 8, 1, 15, tzinfo=UTC)),
        (datetime(2026, 8, 1, 16, tzinfo=UTC), datetime(2026, 8, 2, 10, tzinfo=UTC)),
    ]


def test_over_the_date_line_honolulu_to_tokyo() -> None:
    # Zone change at 2026-08-10 20:00 UTC: 10:00 HST on the 10th, 05:00 JST on the 11th.
    # 10 Aug: 00:00 HST = 10:00 UTC to the change: 10 h. 11 Aug: from the change to 00:00
    # JST on the 12th = 15:00 UTC on the 11th: 19 h.
    history = ZoneHistory(
        [ZonePeriod(ALWAYS, "Pacific/Honolulu"),
         ZonePeriod(datetime(2026, 8, 10, 20, tzinfo=UTC), "Asia/Tokyo")]
    )  # fmt: skip
    assert _hours(history, date(2026, 8, 9), date(2026, 8, 12)) == [24.0, 10.0, 19.0, 24.0]


def test_samoa_skipped_30_december_2011() -> None:
    # Pacific/Apia moved from UTC-10 to UTC+14 at the end of 29 Dec 2011: 30 Dec never
    # happened there (0 h); 29 and 31 Dec lasted 24 h.
    history = ZoneHistory.single("Pacific/Apia")
    assert _hours(history, date(2011, 12, 29), date(2011, 12, 31)) == [24.0, 0.0, 24.0]
    assert history.day_intervals(date(2011, 12, 30)) == ()


# --- wall times in a DST gap or fold --------------------------------------------------------


def test_wall_times_in_the_gap_and_the_fold() -> None:
    ny = ZoneInfo("America/New_York")
    # 2021-03-14 02:30 does not exist in New York (02:00 EST -> 03:00 EDT); RFC 5545 reads
    # it with the offset before the gap, -5 h: 07:30 UTC (= 03:30 EDT).
    gap = resolve(datetime(2021, 3, 14, 2, 30), ny)
    assert (gap.instant, gap.kind) == (
        datetime(2021, 3, 14, 7, 30, tzinfo=UTC),
        WallTime.NONEXISTENT,
    )
    # 2021-11-07 01:30 happens twice: 05:30 UTC (EDT, -4 h) then 06:30 UTC (EST, -5 h).
    fold = resolve(datetime(2021, 11, 7, 1, 30), ny)
    assert (fold.instant, fold.kind) == (
        datetime(2021, 11, 7, 5, 30, tzinfo=UTC),
        WallTime.AMBIGUOUS,
    )
    # A file in time order: 01:00, 01:30, 01:59 (EDT), then 01:00, 01:30 again (EST).
    clock = WallClock(ny)
    walls = [(1, 0), (1, 30), (1, 59), (1, 0), (1, 30), (2, 0)]
    instants = [clock.instant(datetime(2021, 11, 7, h, m)) for h, m in walls]
    assert [(i.hour, i.minute) for i in instants] == [
        (5, 0),
        (5, 30),
        (5, 59),
        (6, 0),
        (6, 30),
        (7, 0),
    ]
    assert (clock.ambiguous, clock.nonexistent) == (5, 0)
