"""The pure parts of the dashboards: figures, meal pairs by type, the worklist order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from core.metrics import (
    AgpBin,
    Band,
    BandPercentages,
    GlucoseSeries,
    GoalMetric,
    Source,
    Summary,
    summarize,
)
from core.units import MG_DL_PER_MMOL_L, Unit
from dashboards.figures import BAND_COLOURS, Point, agp_figure, bands_figure, readings_figure
from dashboards.i18n import CATALOGUE, Labels, Lang
from dashboards.meals import LoggedReading, meal_type, rises_by_type, typed_pairs
from dashboards.worklist import PatientPeriods, worklist

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_every_label_has_both_languages() -> None:
    for key, (en, zh) in CATALOGUE.items():
        assert en and zh, key


def test_agp_converts_to_mmol_and_keeps_its_three_named_layers() -> None:
    bins = [AgpBin(60 * h, 5, 60.0, 90.0, 120.0, 150.0, 200.0) for h in range(24)]
    labels = Labels(Lang.ZH_CN)
    fig = agp_figure(bins, Unit.MMOL_L, labels)
    named = {t.name: t for t in fig.data}
    assert {labels["median"], labels["iqr"], labels["p5_95"]} <= set(named)
    assert named[labels["median"]].y[0] == round(120.0 / MG_DL_PER_MMOL_L, 1)


def test_bands_bar_shows_each_goal() -> None:
    fig = bands_figure(BandPercentages(0.5, 3.5, 72.0, 20.0, 4.0), Labels(Lang.EN))
    assert [t.meta for t in fig.data] == ["very_low", "low", "in_range", "high", "very_high"]
    assert "goal >70 %" in fig.data[2].name


def _logged(
    at: datetime, mg_dl: float, meal: str | None, carbs: float | None = None
) -> LoggedReading:
    return LoggedReading(at, at.astimezone(SHANGHAI), mg_dl, meal, carbs)


def test_pairs_get_meal_type_from_local_time_and_carbs_from_either_reading() -> None:
    breakfast = datetime(2026, 3, 1, 7, 30, tzinfo=SHANGHAI)
    dinner = datetime(2026, 3, 1, 18, 0, tzinfo=SHANGHAI)
    pairs = typed_pairs(
        [
            _logged(breakfast, 110, "before_meal", 50),
            _logged(breakfast + timedelta(hours=2), 170, "after_meal"),
            _logged(dinner, 120, "before_meal"),
            _logged(dinner + timedelta(hours=2), 150, "after_meal", 70),
        ]
    )
    assert [(p.meal_type, p.rise_mg_dl, p.carbohydrate_g) for p in pairs] == [
        ("breakfast", 60, 50),
        ("dinner", 30, 70),
    ]
    assert rises_by_type(pairs) == {"breakfast": [60], "lunch": [], "dinner": [30], "snack": []}
    assert meal_type(datetime(2026, 3, 1, 2, 0)) == "snack"


def _summary(values: list[float], source: Source = Source.METER, days: int = 14) -> Summary:
    times = [NOW - timedelta(hours=i * days * 24 / len(values)) for i in range(len(values))]
    series = GlucoseSeries.build(times, np.array(values), Unit.MG_DL, source)
    return summarize(series, SHANGHAI)


def _periods(name: str, current: Summary | None, last: datetime = NOW) -> PatientPeriods:
    return PatientPeriods(uuid.uuid4(), name, SHANGHAI, current, current, last)


def test_worklist_ranks_lows_then_very_high_then_time_in_range() -> None:
    steady = [120.0, 140.0, 110.0, 160.0] * 14
    lows = [120.0, 50.0, 65.0, 160.0] * 14
    poor = ([150.0] * 11 + [220.0] * 32 + [300.0] * 57) * 14  # TIR 11 %, very high 57 %
    mediocre = ([150.0] * 60 + [220.0] * 38 + [260.0] * 2) * 14  # TIR 60 %, very high 2 %
    entries = worklist(
        [
            _periods("steady", _summary(steady)),
            _periods("poor", _summary(poor, Source.CGM)),
            _periods("mediocre", _summary(mediocre, Source.CGM)),
            _periods("lows", _summary(lows)),
            _periods("silent", None, NOW - timedelta(days=20)),
        ],
        NOW,
    )
    assert [e.name for e in entries] == ["lows", "poor", "mediocre", "silent", "steady"]
    by_name = {e.name: e for e in entries}
    assert {r.key for r in by_name["lows"].reasons} >= {"very_low", "tbr", "level2"}
    poor_reasons = {r.key: r for r in by_name["poor"].reasons}
    assert {"very_high", "in_range", "tar"} <= set(poor_reasons)
    assert round(poor_reasons["very_high"].value_pct or 0) == 57
    assert poor_reasons["in_range"].goal == ">70 %"
    assert GoalMetric.TIME_IN_RANGE in by_name["poor"].missed
    assert [r.key for r in by_name["silent"].reasons] == ["missing"]
    assert by_name["steady"].reasons == () and not by_name["steady"].flagged


def test_a_reading_is_coloured_by_its_band_in_the_unit_it_was_measured_in() -> None:
    # 10.0 mmol/L is in range (the high band starts above 10.0); converted it is 180.16 mg/dL,
    # which judged in mg/dL would be high.
    at = datetime(2026, 3, 1, 8, 0, tzinfo=SHANGHAI)
    measured = LoggedReading(at, at, 10.0 * MG_DL_PER_MMOL_L, None, None, 10.0, Unit.MMOL_L)
    assert measured.band is Band.IN_RANGE
    fig = readings_figure(
        [Point(at, measured.mg_dl, None, measured.band)], Unit.MG_DL, Labels(Lang.EN), "today"
    )
    assert list(fig.data[0].marker.color) == [BAND_COLOURS[Band.IN_RANGE]]
