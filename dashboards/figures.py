"""Plotly figures of the dashboards: pure functions, data in, `go.Figure` out.

Glucose arrives in mg/dL (as core/metrics computes it) and is shown in the unit asked for,
through `core.units.from_mg_dl`; labels come from `dashboards.i18n`. Nothing here reads a
database or a request, so every figure can be checked on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import plotly.graph_objects as go

from core.metrics import (
    ADA_TARGETS,
    BAND_ORDER,
    GOAL_OF_BAND,
    THRESHOLDS,
    AgpBin,
    Band,
    BandPercentages,
    classify,
)
from core.units import Unit, from_mg_dl
from dashboards.i18n import Labels

# Colours of the five bands, as the consensus AGP report draws them (dark red to orange).
BAND_COLOURS: dict[Band, str] = {
    Band.VERY_LOW: "#a4161a",
    Band.LOW: "#e5383b",
    Band.IN_RANGE: "#2a9d8f",
    Band.HIGH: "#f4a261",
    Band.VERY_HIGH: "#e76f51",
}
# The consensus goal shown next to each band of the bar (defined in core.metrics.goals).
CONSENSUS_GOALS = GOAL_OF_BAND
MEDIAN_COLOUR = "#1d3557"
IQR_FILL = "rgba(69, 123, 157, 0.45)"
OUTER_FILL = "rgba(168, 218, 220, 0.45)"
TARGET_FILL = "rgba(42, 157, 143, 0.10)"
MINUTES_PER_HOUR = 60
# Compact margins: the report prints three figures on one A4 page.
MARGINS = {"l": 50, "r": 20, "t": 40, "b": 40}
# Fewer pairs than this are drawn as points: a box needs enough values for its quartiles.
MIN_BOX_PAIRS = 5
# One decimal in mmol/L, whole numbers in mg/dL, as meters display them.
DECIMALS = {Unit.MG_DL: 0, Unit.MMOL_L: 1}


def show(value_mg_dl: float, unit: Unit) -> float:
    """A glucose value in `unit`, rounded as meters display it."""
    return round(from_mg_dl(value_mg_dl, unit), DECIMALS[unit])


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.0, "font": {"size": 15}},
        height=height,
        margin=MARGINS,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _target_band(fig: go.Figure, unit: Unit) -> None:
    t = THRESHOLDS[unit]
    fig.add_hrect(y0=t.low_below, y1=t.high_above, fillcolor=TARGET_FILL, line_width=0)


def agp_figure(bins: Sequence[AgpBin], unit: Unit, labels: Labels, height: int = 340) -> go.Figure:
    """Median, 25-75 % and 5-95 % bands by local time of day (bins in mg/dL)."""
    hours = [b.minute_of_day / MINUTES_PER_HOUR for b in bins]

    def line(values: list[float], name: str, **style: object) -> go.Scatter:
        return go.Scatter(x=hours, y=values, name=name, mode="lines", **style)

    def pick(attr: str) -> list[float]:
        return [show(getattr(b, attr), unit) for b in bins]

    fig = go.Figure()
    # Each band is an invisible lower edge and a filled upper edge (fill to the previous).
    fig.add_trace(line(pick("p5"), "p5", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        line(pick("p95"), labels["p5_95"], line={"width": 0}, fill="tonexty", fillcolor=OUTER_FILL)
    )
    fig.add_trace(line(pick("p25"), "p25", line={"width": 0}, showlegend=False, hoverinfo="skip"))
    fig.add_trace(
        line(pick("p75"), labels["iqr"], line={"width": 0}, fill="tonexty", fillcolor=IQR_FILL)
    )
    fig.add_trace(line(pick("p50"), labels["median"], line={"color": MEDIAN_COLOUR, "width": 3}))
    _target_band(fig, unit)
    fig.update_xaxes(title=labels["time_of_day"], range=[0, 24], dtick=3)
    fig.update_yaxes(title=f"{labels['glucose']} ({unit.value})")
    return _layout(fig, labels["agp"], height)


def bands_figure(bands: BandPercentages, labels: Labels, height: int = 170) -> go.Figure:
    """The five-band time-in-range bar, one trace per band, goals in the legend."""
    fig = go.Figure()
    for band in BAND_ORDER:
        share = float(getattr(bands, band.value))
        goal = CONSENSUS_GOALS[band]
        target = f"{goal.comparison}{goal.target_pct:g} %"
        fig.add_trace(
            go.Bar(
                x=[share],
                y=[""],
                orientation="h",
                name=f"{labels[band.value]} {share:.0f} % ({labels['goal']} {target})",
                marker_color=BAND_COLOURS[band],
                text=[f"{share:.0f} %"],
                textposition="inside",
                meta=band.value,
            )
        )
    # Plotly lists stacked bars' legend bottom-up by default; the bands read low to high.
    fig.update_layout(barmode="stack", legend={"traceorder": "normal"})
    fig.update_xaxes(range=[0, 100], ticksuffix=" %")
    return _layout(fig, labels["time_in_ranges"], height)


@dataclass(frozen=True)
class Point:
    """One reading as a figure shows it: local time, mg/dL, meal tag."""

    at: datetime
    mg_dl: float
    meal: str | None = None
    band: Band | None = None  # core's classification in the measured unit; None: from mg/dL


def readings_figure(
    points: Sequence[Point], unit: Unit, labels: Labels, title: str, height: int = 300
) -> go.Figure:
    """Readings over time, coloured by band (judged by core in the unit each reading was
    measured in, never from the rounded value shown), with the target range shaded."""
    fig = go.Figure()
    values = [show(p.mg_dl, unit) for p in points]
    colours = [
        BAND_COLOURS[p.band if p.band is not None else classify(p.mg_dl, Unit.MG_DL)]
        for p in points
    ]
    fig.add_trace(
        go.Scatter(
            x=[p.at.isoformat() for p in points],
            y=values,
            mode="lines+markers",
            name=labels["readings"],
            marker={"color": colours, "size": 9},
            line={"color": "#adb5bd", "width": 1},
            text=[labels[p.meal] if p.meal else "" for p in points],
        )
    )
    _target_band(fig, unit)
    fig.update_yaxes(title=f"{labels['glucose']} ({unit.value})")
    return _layout(fig, title, height)


def meal_rise_figure(
    rises_mg_dl: Mapping[str, Sequence[float]], unit: Unit, labels: Labels, height: int = 320
) -> go.Figure:
    """Post-meal rise (after - before) per meal type: one box per type with pairs."""
    fig = go.Figure()
    for meal_type, rises in rises_mg_dl.items():
        if not rises:
            continue
        ys = [show(r, unit) for r in rises]
        name = f"{labels[meal_type]} (n={len(ys)})"
        if len(ys) < MIN_BOX_PAIRS:
            # A box of a few pairs would draw quartiles that are not there: points only.
            fig.add_trace(
                go.Scatter(
                    x=[name] * len(ys),
                    y=ys,
                    mode="markers",
                    name=name,
                    meta=meal_type,
                    marker={"size": 10},
                )
            )
            continue
        fig.add_trace(go.Box(y=ys, name=name, boxpoints="all", meta=meal_type))
    fig.add_hline(y=0, line_color="#6c757d", line_width=1)
    fig.update_yaxes(title=f"{labels['rise']} ({unit.value})")
    return _layout(fig, labels["post_meal_rise"], height)


def days_compared_figure(
    days: Sequence[date],
    before_mg_dl: Sequence[float | None],
    after_mg_dl: Sequence[float | None],
    unit: Unit,
    labels: Labels,
    height: int = 320,
) -> go.Figure:
    """Mean before-meal and after-meal glucose per day, side by side."""
    x = [d.isoformat() for d in days]

    def conv(values: Sequence[float | None]) -> list[float | None]:
        return [None if v is None else show(v, unit) for v in values]

    fig = go.Figure(
        [
            go.Bar(x=x, y=conv(before_mg_dl), name=labels["before_meal"], marker_color="#457b9d"),
            go.Bar(x=x, y=conv(after_mg_dl), name=labels["after_meal"], marker_color="#e76f51"),
        ]
    )
    fig.update_layout(barmode="group")
    after = ADA_TARGETS[unit].after_below
    fig.add_hline(
        y=after,
        line_dash="dot",
        line_color="#e76f51",
        annotation_text=f"{labels['after_meal_target']} <{after:g} {unit.value}",
        annotation_position="top left",
    )
    fig.update_yaxes(title=f"{labels['mean']} ({unit.value})")
    return _layout(fig, labels["days_compared"], height)
