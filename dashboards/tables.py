"""The tables beside the figures, as rows of display strings: pure, like the figures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from core.days import DaySummary
from core.metrics import DEFAULT_MIN_METER_READINGS_PER_DAY, Summary
from core.units import Unit
from core.vocabulary import SourceKind
from dashboards.figures import DECIMALS, show
from dashboards.i18n import Labels
from dashboards.meals import LoggedReading, TypedPair, meal_type

Row = dict[str, str]
DASH = "–"
TIME_FORMAT = "%Y-%m-%d %H:%M"


def _glucose(value: float | None, unit: Unit) -> str:
    return DASH if value is None else f"{show(value, unit):g}"


def pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} %"


def _carbs(value: float | None) -> str:
    return DASH if value is None else f"{value:.0f}"


def day_rows(days: Sequence[DaySummary], unit: Unit) -> list[Row]:
    """Newest day first."""
    return [
        {
            "date": d.date.isoformat(),
            "readings": str(d.readings),
            "mean": _glucose(d.mean_mg_dl, unit),
            "min": _glucose(d.min_mg_dl, unit),
            "max": _glucose(d.max_mg_dl, unit),
            "in_range": pct(None if d.bands is None else d.bands.in_range),
        }
        for d in reversed(days)
    ]


def logbook_rows(readings: Sequence[LoggedReading], unit: Unit, labels: Labels) -> list[Row]:
    """Newest first: time, value, meal context, carbohydrates."""
    return [
        {
            "time": r.local.strftime(TIME_FORMAT),
            "glucose": _glucose(r.mg_dl, unit),
            "meal": labels[r.meal] if r.meal in _MEAL_KEYS else DASH,
            "carbs": _carbs(r.carbohydrate_g),
        }
        for r in sorted(readings, key=lambda r: r.at, reverse=True)
    ]


_MEAL_KEYS = {"before_meal", "after_meal", "fasting", "casual", "bedtime"}


def pair_rows(pairs: Sequence[TypedPair], unit: Unit, labels: Labels) -> list[Row]:
    """Newest first."""
    return [
        {
            "time": p.before.local.strftime(TIME_FORMAT),
            "meal_type": labels[p.meal_type],
            "before": _glucose(p.before.mg_dl, unit),
            "after": _glucose(p.after.mg_dl, unit),
            # From the displayed values, so the row adds up as the reader checks it.
            "rise": f"{round(show(p.after.mg_dl, unit) - show(p.before.mg_dl, unit), 1):+g}",
            "carbs": _carbs(p.carbohydrate_g),
        }
        for p in reversed(pairs)
    ]


def unpaired_rows(readings: Sequence[LoggedReading], unit: Unit, labels: Labels) -> list[Row]:
    """After-meal readings in no pair, newest first, in the pairs table's columns."""
    return [
        {
            "time": r.local.strftime(TIME_FORMAT),
            "meal_type": labels[meal_type(r.local)],
            "before": DASH,
            "after": _glucose(r.mg_dl, unit),
            "rise": DASH,
            "carbs": _carbs(r.carbohydrate_g),
        }
        for r in reversed(readings)
    ]


def _metric(
    key: str,
    current: Summary | None,
    previous: Summary | None,
    value: Callable[[Summary], float | None],
    text: Callable[[float | None], str],
    difference: Callable[[float], str],
    labels: Labels,
) -> Row:
    now = None if current is None else value(current)
    before = None if previous is None else value(previous)
    diff = DASH if now is None or before is None else difference(now - before)
    return {"metric": labels[key], "this": text(now), "previous": text(before), "change": diff}


def metric_rows(
    current: Summary | None, previous: Summary | None, unit: Unit, labels: Labels
) -> list[Row]:
    """The pre-visit report's headline metrics, this period beside the previous one. The
    reports are `core`'s typed reports in `unit` (their glucose values are in it)."""

    def glucose(v: float | None) -> str:
        return DASH if v is None else f"{round(v, DECIMALS[unit]):g}"

    def signed_glucose(d: float) -> str:
        return f"{round(d, DECIMALS[unit]):+g}"

    def number(v: float | None) -> str:
        return DASH if v is None else f"{v:.1f}"

    def signed(d: float) -> str:
        return f"{d:+.1f}"

    def count(v: float | None) -> str:
        return DASH if v is None else f"{v:.0f}"

    def hypo(s: Summary) -> float:
        return float(s.hypoglycaemia.level1 + s.hypoglycaemia.level2)

    def days_with_data(s: Summary) -> float | None:
        if s.source is not SourceKind.METER:
            return None
        return float(s.sufficiency.days_meeting_minimum)

    return [
        _metric(
            "mean_glucose",
            current,
            previous,
            lambda s: s.mean,
            glucose,
            signed_glucose,
            labels,
        ),
        _metric("gmi", current, previous, lambda s: s.gmi_pct, pct, signed, labels),
        _metric("cv", current, previous, lambda s: s.cv_pct, pct, signed, labels),
        _metric("in_range", current, previous, lambda s: s.in_ranges.in_range, pct, signed, labels),
        _metric("tbr", current, previous, lambda s: s.in_ranges.below_range, pct, signed, labels),
        _metric(
            "level2",
            current,
            previous,
            lambda s: float(s.hypoglycaemia.level2),
            count,
            signed,
            labels,
        ),
        _metric("hypo_events", current, previous, hypo, count, signed, labels),
        _metric(
            "readings_per_day",
            current,
            previous,
            lambda s: s.readings_per_day,
            number,
            signed,
            labels,
        ),
        {
            **_metric("days_with_data", current, previous, days_with_data, count, signed, labels),
            "metric": labels["days_with_data"].format(n=DEFAULT_MIN_METER_READINGS_PER_DAY),
        },
    ]


def low_rows(readings: Sequence[LoggedReading], low_mg_dl: float, unit: Unit) -> list[Row]:
    """Readings below range, newest first: the report's hypoglycaemia events (meter)."""
    return [
        {"time": r.local.strftime(TIME_FORMAT), "glucose": _glucose(r.mg_dl, unit)}
        for r in sorted(readings, key=lambda r: r.at, reverse=True)
        if r.mg_dl < low_mg_dl
    ]


def when(instant: datetime | None) -> str:
    return DASH if instant is None else instant.strftime(TIME_FORMAT)
