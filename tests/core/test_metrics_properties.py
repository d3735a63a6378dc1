"""Property tests of the metrics, checked against independent plain-Python computations."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.metrics import (
    Band,
    EmptySeriesError,
    GlucoseSeries,
    Source,
    band_percentages,
    classify,
    cv_pct,
    risk_indices,
    summarize,
)
from core.metrics.risk import RISK_NEUTRAL_MG_DL
from core.units import MG_DL_PER_MMOL_L, Unit

# Plausible meter range (DESIGN: 10-1000 mg/dL is what we store).
mg_dl_values = st.floats(min_value=10.0, max_value=1000.0, allow_nan=False)
mmol_values = st.floats(min_value=0.6, max_value=55.0, allow_nan=False)
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def series_of(values: list[float], unit: Unit = Unit.MG_DL, minutes: int = 5) -> GlucoseSeries:
    times = [T0 + timedelta(minutes=minutes * i) for i in range(len(values))]
    return GlucoseSeries.build(times, values, unit, Source.CGM)


def band_by_hand(value: float, unit: Unit) -> Band:
    """The consensus table, written out independently of core.metrics.bands."""
    if unit is Unit.MG_DL:
        very_low, low, high, very_high = 54.0, 70.0, 180.0, 250.0
    else:
        very_low, low, high, very_high = 3.0, 3.9, 10.0, 13.9
    if value < very_low:
        return Band.VERY_LOW
    if value < low:
        return Band.LOW
    if value <= high:
        return Band.IN_RANGE
    if value <= very_high:
        return Band.HIGH
    return Band.VERY_HIGH


@given(st.lists(mg_dl_values, min_size=1, max_size=200))
def test_bands_sum_to_100(values: list[float]) -> None:
    p = band_percentages(series_of(values))
    assert p.very_low + p.low + p.in_range + p.high + p.very_high == pytest.approx(100.0)


@given(st.lists(mg_dl_values, min_size=1, max_size=100))
def test_band_shares_match_a_hand_count(values: list[float]) -> None:
    p = band_percentages(series_of(values))
    n = len(values)
    share = {b: 100.0 * sum(band_by_hand(v, Unit.MG_DL) is b for v in values) / n for b in Band}
    assert p.very_low == pytest.approx(share[Band.VERY_LOW])
    assert p.low == pytest.approx(share[Band.LOW])
    assert p.in_range == pytest.approx(share[Band.IN_RANGE])
    assert p.high == pytest.approx(share[Band.HIGH])
    assert p.very_high == pytest.approx(share[Band.VERY_HIGH])


@given(mmol_values)
def test_mmol_values_are_classified_in_mmol(value: float) -> None:
    assert classify(value, Unit.MMOL_L) is band_by_hand(value, Unit.MMOL_L)


@pytest.mark.parametrize(
    ("value", "unit", "band"),
    [
        (3.9, Unit.MMOL_L, Band.IN_RANGE),  # 70.26 mg/dL after conversion, in range as measured
        (3.8, Unit.MMOL_L, Band.LOW),  # 68.46 mg/dL
        (3.0, Unit.MMOL_L, Band.LOW),
        (2.9, Unit.MMOL_L, Band.VERY_LOW),
        (10.0, Unit.MMOL_L, Band.IN_RANGE),  # 180.16 mg/dL, still in range as measured
        (10.1, Unit.MMOL_L, Band.HIGH),
        (13.9, Unit.MMOL_L, Band.HIGH),  # 250.4 mg/dL
        (14.0, Unit.MMOL_L, Band.VERY_HIGH),
        (53.9, Unit.MG_DL, Band.VERY_LOW),
        (54.0, Unit.MG_DL, Band.LOW),
        (69.9, Unit.MG_DL, Band.LOW),
        (70.0, Unit.MG_DL, Band.IN_RANGE),
        (180.0, Unit.MG_DL, Band.IN_RANGE),
        (180.1, Unit.MG_DL, Band.HIGH),
        (250.0, Unit.MG_DL, Band.HIGH),
        (250.1, Unit.MG_DL, Band.VERY_HIGH),
    ],
)
def test_boundaries_do_not_move_through_conversion(value: float, unit: Unit, band: Band) -> None:
    assert classify(value, unit) is band
    # ... and the series path agrees with the scalar one.
    p = band_percentages(series_of([value], unit))
    assert getattr(p, band.value) == 100.0


@given(st.lists(st.tuples(st.booleans(), st.floats(0.6, 1000.0)), min_size=1, max_size=100))
def test_a_mixed_unit_series_classifies_each_reading_in_its_own_unit(
    readings: list[tuple[bool, float]],
) -> None:
    units = [Unit.MMOL_L if mmol else Unit.MG_DL for mmol, _ in readings]
    values = [v for _, v in readings]
    times = [T0 + timedelta(minutes=5 * i) for i in range(len(values))]
    p = band_percentages(GlucoseSeries.build(times, values, units, Source.METER))
    n = len(values)
    for band in Band:
        by_hand = sum(band_by_hand(v, u) is band for v, u in zip(values, units, strict=True))
        assert getattr(p, band.value) == pytest.approx(100.0 * by_hand / n)


def test_conversion_would_have_moved_the_boundary() -> None:
    """Guards the test above: converting first really would misclassify these readings."""
    assert 3.9 * MG_DL_PER_MMOL_L > 70 and 10.0 * MG_DL_PER_MMOL_L > 180


@given(
    st.lists(mg_dl_values, min_size=2, max_size=100),
    st.floats(min_value=0.01, max_value=100.0),
)
def test_cv_is_invariant_to_scaling(values: list[float], k: float) -> None:
    a = np.array(values)
    base = cv_pct(a)
    scaled = cv_pct(a * k)
    assert base is not None and scaled is not None
    assert scaled == pytest.approx(base, rel=1e-9, abs=1e-9)


@given(st.lists(st.floats(min_value=RISK_NEUTRAL_MG_DL, max_value=1000.0), min_size=1))
def test_lbgi_is_zero_when_nothing_is_below_112_5(values: list[float]) -> None:
    assert risk_indices(np.array(values)).lbgi == 0.0


@given(st.lists(st.floats(min_value=10.0, max_value=112.4), min_size=1))
def test_hbgi_is_zero_when_everything_is_below_112_5(values: list[float]) -> None:
    assert risk_indices(np.array(values)).hbgi == 0.0


@given(st.lists(mg_dl_values, min_size=1, max_size=100))
def test_risk_indices_match_a_plain_loop(values: list[float]) -> None:
    low = high = 0.0
    for g in values:
        f = 1.509 * (math.log(g) ** 1.084 - 5.381)
        if g < 112.5:
            low += 10 * f * f
        else:
            high += 10 * f * f
    r = risk_indices(np.array(values))
    assert r.lbgi == pytest.approx(low / len(values), rel=1e-9, abs=1e-12)
    assert r.hbgi == pytest.approx(high / len(values), rel=1e-9, abs=1e-12)


@given(st.lists(mg_dl_values, min_size=2, max_size=100))
def test_summary_matches_the_statistics_module(values: list[float]) -> None:
    s = summarize(series_of(values), UTC)
    mean = statistics.fmean(values)
    sd = statistics.stdev(values)  # sample SD, n - 1
    assert s.unit is Unit.MG_DL
    assert s.mean == pytest.approx(mean, rel=1e-9)
    assert s.sd == pytest.approx(sd, rel=1e-9, abs=1e-9)
    assert s.cv_pct == pytest.approx(100 * sd / mean, rel=1e-9, abs=1e-9)
    assert s.gmi_pct == pytest.approx(3.31 + 0.02392 * mean, rel=1e-12)


@given(st.lists(mmol_values, min_size=2, max_size=50))
def test_mmol_series_reports_mg_dl_with_the_one_factor(values: list[float]) -> None:
    s = summarize(series_of(values, Unit.MMOL_L), UTC)
    assert s.mean == pytest.approx(statistics.fmean(values) * 18.016, rel=1e-9)
    in_mmol = summarize(series_of(values, Unit.MMOL_L), UTC, unit=Unit.MMOL_L)
    assert in_mmol.unit is Unit.MMOL_L
    assert in_mmol.mean == pytest.approx(statistics.fmean(values), rel=1e-9)


def test_control_solution_never_counts() -> None:
    times = [T0 + timedelta(hours=h) for h in range(4)]
    s = GlucoseSeries.build(
        times, [100.0, 40.0, 120.0, 400.0], Unit.MG_DL, Source.METER,
        control=[False, True, False, True],
    )  # fmt: skip
    assert list(s.values) == [100.0, 120.0]
    assert s.control_excluded == 2
    summary = summarize(s, UTC)
    assert summary.readings == 2
    assert summary.in_ranges.very_low == 0.0 and summary.in_ranges.very_high == 0.0


def test_only_control_solution_is_an_error() -> None:
    s = GlucoseSeries.build([T0], [100.0], Unit.MG_DL, Source.METER, control=[True])
    with pytest.raises(EmptySeriesError):
        summarize(s, UTC)


def test_series_is_sorted_and_read_only() -> None:
    s = GlucoseSeries.build([T0 + timedelta(hours=1), T0], [150.0, 90.0], Unit.MG_DL, Source.CGM)
    assert list(s.values) == [90.0, 150.0]
    with pytest.raises(ValueError, match="read-only"):
        s.values[0] = 1.0


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no zone"):
        GlucoseSeries.build([datetime(2024, 1, 1)], [100.0], Unit.MG_DL, Source.CGM)


def test_one_reading_has_no_sd() -> None:
    s = summarize(series_of([100.0]), UTC)
    assert s.sd is None and s.cv_pct is None and s.readings == 1
