"""The pre-visit report in the layout clinicians know (the AGP Report v5 one-pager): pure
builders from `core`'s typed report (`core.metrics.report`) to display rows and figures.
Nothing here computes a metric: every number is a field of the report, formatted.

Top to bottom: the statistics box (period, days, % time CGM active or readings per day,
mean, GMI, CV with its <= 36 % target), the five-band bar with the consensus goals, the AGP
on a fixed axis with lines at 54/70/180/250 mg/dL, and the daily profiles of the 14 days.
A meter's report says "readings", never "time"; below the sufficiency rule it has no GMI and
no AGP, and says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.metrics import BAND_ORDER, GOAL_OF_BAND, GOALS, GoalMetric, Summary
from core.metrics.report import AgpBinOut, BandLimits, CgmReport, MeterReport
from core.units import Unit
from core.vocabulary import SourceKind
from dashboards.figures import (
    BAND_COLOURS,
    DECIMALS,
    IQR_FILL,
    MEDIAN_COLOUR,
    OUTER_FILL,
    show,
)
from dashboards.i18n import Labels
from dashboards.meals import LoggedReading

Row = dict[str, object]
DASH = "–"
# The AGP's y-axis is the same for every patient so two reports compare at a glance: 0 to
# 350 mg/dL as the AGP Report draws it (values above are drawn at the edge).
AXIS_TOP = {Unit.MG_DL: 350.0, Unit.MMOL_L: 19.4}
# Figure heights that, with the statistics box and the bar, fill one A4 page.
AGP_HEIGHT = 230
DAYS_HEIGHT = 190
DAYS_PER_ROW = 7
MARGINS = {"l": 44, "r": 10, "t": 28, "b": 30}
LINE_COLOURS = {"very_low": "#a4161a", "low": "#e5383b", "high": "#f4a261", "very_high": "#e76f51"}


def _glucose(value: float | None, unit: Unit) -> str:
    return DASH if value is None else f"{round(value, DECIMALS[unit]):g} {unit.value}"


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} %"


def _goal(metric: GoalMetric) -> str:
    g = GOALS[metric]
    return f"{g.comparison}{g.target_pct:g} %"


def stats_rows(report: Summary, labels: Labels, period_text: str) -> list[Row]:
    """The statistics box: what a clinician reads first, each with its target if any."""
    unit = report.unit
    rows: list[Row] = [
        {"key": "period", "label": labels["period"], "value": period_text},
        {"key": "days", "label": labels["days"], "value": f"{report.period.days:.0f}"},
    ]
    cv_goal = GOALS[GoalMetric.CV]
    if isinstance(report, CgmReport):
        s = report.sufficiency
        rows.append(
            {
                "key": "active",
                "label": labels["time_active"],
                "value": _pct(s.active_pct),
                "target": f"≥{s.required_active_pct:g} %",
                "met": s.met,
            }
        )
    else:
        m = report.sufficiency
        rows.append(
            {
                "key": "readings_per_day",
                "label": labels["readings_per_day"],
                "value": f"{report.readings_per_day:.1f} ({report.readings} {labels['readings']})",
            }
        )
        rows.append(
            {
                "key": "days_with_data",
                "label": labels["days_with_data"].format(n=m.min_readings_per_day),
                "value": f"{m.days_meeting_minimum} / {report.period.days:.0f}",
                "target": f"≥{m.required_share_of_days_pct:g} %",
                "met": m.met,
            }
        )
    rows.append(
        {"key": "mean", "label": labels["mean_glucose"], "value": _glucose(report.mean, unit)}
    )
    rows.append({"key": "gmi", "label": labels["gmi"], "value": _pct(report.gmi_pct)})
    rows.append(
        {
            "key": "cv",
            "label": labels["cv"],
            "value": _pct(report.cv_pct),
            "target": f"{cv_goal.comparison}{cv_goal.target_pct:g} %",
            "met": None if report.cv_pct is None else cv_goal.met(report.cv_pct),
        }
    )
    return rows


def band_rows(report: Summary, labels: Labels) -> list[Row]:
    """The five-band bar, very high on top as the AGP Report stacks it; the consensus goals
    beside a CGM's bands (they are defined on sensor time, so a meter's bar has none)."""
    shares = report.in_ranges
    limits = report.limits
    unit = report.unit

    def g(v: float) -> str:
        return f"{v:.{DECIMALS[unit]}f}"  # 3.0 mmol/L as meters show it, not 3

    ranges = {
        "very_low": f"<{g(limits.very_low_below)}",
        "low": f"{g(limits.very_low_below)}–<{g(limits.low_below)}",
        "in_range": f"{g(limits.low_below)}–{g(limits.high_above)}",
        "high": f">{g(limits.high_above)}–{g(limits.very_high_above)}",
        "very_high": f">{g(limits.very_high_above)}",
    }
    rows: list[Row] = []
    for band in reversed(BAND_ORDER):
        value = float(getattr(shares, band.value))
        row: Row = {
            "band": band.value,
            "label": labels[band.value],
            "range": f"{ranges[band.value]} {unit.value}",
            "pct": round(value, 1),
            "value": f"{value:.0f} %",
            "colour": BAND_COLOURS[band],
        }
        if report.source is SourceKind.CGM:
            goal = GOAL_OF_BAND[band]
            row["goal"] = f"{labels['goal']} {goal.comparison}{goal.target_pct:g} %"
        rows.append(row)
    return rows


def agp_left_out(report: Summary, labels: Labels) -> str | None:
    """Why the report has no AGP and no GMI (a meter below the sufficiency rule), or None."""
    if isinstance(report, MeterReport) and not report.sufficiency.met:
        s = report.sufficiency
        return labels["agp_left_out"].format(
            met=s.days_meeting_minimum,
            days=f"{report.period.days:.0f}",
            n=s.min_readings_per_day,
            share=f"{s.required_share_of_days_pct:g}",
            required=s.required_days,
        )
    return None


def _threshold_lines(fig: go.Figure, limits: BandLimits, **where: object) -> None:
    for key, y in [
        ("very_low", limits.very_low_below),
        ("low", limits.low_below),
        ("high", limits.high_above),
        ("very_high", limits.very_high_above),
    ]:
        dash = "solid" if key in ("low", "high") else "dot"
        fig.add_hline(y=y, line_color=LINE_COLOURS[key], line_width=1, line_dash=dash, **where)


def agp_report_figure(
    bins: Sequence[AgpBinOut], limits: BandLimits, unit: Unit, labels: Labels
) -> go.Figure:
    """The AGP (values already in `unit`) on the fixed axis with the four cut-point lines."""
    hours = [b.minute_of_day / 60 for b in bins]
    d = DECIMALS[unit]

    def line(attr: str, name: str, **style: object) -> go.Scatter:
        ys = [round(getattr(b, attr), d) for b in bins]
        return go.Scatter(x=hours, y=ys, name=name, mode="lines", **style)

    fig = go.Figure()
    fig.add_trace(line("p5", "p5", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        line("p95", labels["p5_95"], line={"width": 0}, fill="tonexty", fillcolor=OUTER_FILL)
    )
    fig.add_trace(line("p25", "p25", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(line("p75", labels["iqr"], line={"width": 0}, fill="tonexty", fillcolor=IQR_FILL))
    fig.add_trace(line("p50", labels["median"], line={"color": MEDIAN_COLOUR, "width": 3}))
    _threshold_lines(fig, limits)
    ticks = [limits.very_low_below, limits.low_below, limits.high_above, limits.very_high_above]
    fig.update_xaxes(
        range=[0, 24],
        tickvals=[0, 3, 6, 9, 12, 15, 18, 21, 24],
        ticktext=["0:00", "3:00", "6:00", "9:00", "12:00", "15:00", "18:00", "21:00", "24:00"],
        fixedrange=True,
    )
    fig.update_yaxes(
        range=[0, AXIS_TOP[unit]],
        tickvals=ticks,
        ticktext=[f"{t:.{d}f}" for t in ticks],
        title=unit.value,
        fixedrange=True,
    )
    fig.update_layout(
        title={"text": labels["agp"], "x": 0, "font": {"size": 14}},
        height=AGP_HEIGHT,
        margin=MARGINS,
        template="plotly_white",
        showlegend=True,
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.12, "font": {"size": 10}},
    )
    return fig


def daily_profiles_figure(
    readings: Sequence[LoggedReading],
    first_day: date,
    days: int,
    limits: BandLimits,
    unit: Unit,
    labels: Labels,
) -> go.Figure:
    """One small panel a day (readings by local time of day), two rows of seven, on the
    AGP's fixed axis with the target range lines."""
    rows = -(-days // DAYS_PER_ROW)
    dates = [first_day + timedelta(days=i) for i in range(days)]
    fig = make_subplots(
        rows=rows,
        cols=DAYS_PER_ROW,
        shared_yaxes=True,
        horizontal_spacing=0.006,
        vertical_spacing=0.16,
        subplot_titles=[f"{d:%m-%d}" for d in dates],
    )
    by_day: dict[date, list[LoggedReading]] = {d: [] for d in dates}
    for r in readings:
        if r.local.date() in by_day:
            by_day[r.local.date()].append(r)
    for i, day in enumerate(dates):
        row, col = i // DAYS_PER_ROW + 1, i % DAYS_PER_ROW + 1
        points = sorted(by_day[day], key=lambda r: r.local)
        fig.add_trace(
            go.Scatter(
                x=[r.local.hour + r.local.minute / 60 for r in points],
                y=[show(r.mg_dl, unit) for r in points],
                mode="lines+markers",
                marker={"size": 3, "color": MEDIAN_COLOUR},
                line={"width": 1, "color": MEDIAN_COLOUR},
                showlegend=False,
                name=day.isoformat(),
                hoverinfo="x+y",
            ),
            row=row,
            col=col,
        )
        for y, key in [(limits.low_below, "low"), (limits.high_above, "high")]:
            fig.add_hline(y=y, line_color=LINE_COLOURS[key], line_width=1, row=row, col=col)
    fig.update_xaxes(range=[0, 24], showticklabels=False, showgrid=False, fixedrange=True)
    fig.update_yaxes(range=[0, AXIS_TOP[unit]], showticklabels=False, fixedrange=True)
    fig.update_yaxes(showticklabels=True, tickvals=[limits.low_below, limits.high_above], col=1)
    fig.update_annotations(font_size=9)
    fig.update_layout(
        title={"text": labels["daily_profiles"], "x": 0, "font": {"size": 14}},
        height=DAYS_HEIGHT,
        margin={**MARGINS, "t": 40},
        template="plotly_white",
    )
    return fig


def meter_rows(report: MeterReport, labels: Labels) -> list[Row]:
    """Readings by meal context against ADA's targets, and the pre/post-meal pairs."""
    unit = report.unit
    m = report.meals
    t = m.targets
    d = DECIMALS[unit]
    before_target = f"{round(t.before_low, d):g}–{round(t.before_high, d):g}"
    after_target = f"<{round(t.after_below, d):g}"
    rows: list[Row] = []
    for key, stats, target in [
        ("fasting", m.fasting, before_target),
        ("before_meal", m.before_meal, before_target),
        ("after_meal", m.after_meal, after_target),
    ]:
        rows.append(
            {
                "what": labels[key],
                "readings": str(stats.readings),
                "mean": _glucose(stats.mean, unit),
                "in_target": _pct(stats.pct_in_target),
                "target": f"{target} {unit.value}",
            }
        )
    rows.append(
        {
            "what": labels["meal_pairs"],
            "readings": str(m.pairs),
            "mean": _glucose(m.mean_rise, unit),
            "in_target": DASH,
            "target": f"{labels['unpaired_after']}: {m.unpaired_after_meal}",
        }
    )
    return rows
