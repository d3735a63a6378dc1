"""Hypoglycaemia: events for CGM data, readings for fingerstick (meter) data.

Levels (International Consensus on Time in Range, Battelino 2019): level 1 is
54 <= g < 70 mg/dL (3.0 <= g < 3.9 mmol/L), level 2 is g < 54 mg/dL (< 3.0 mmol/L), each
reading judged in the unit it was measured in (thresholds from `bands.THRESHOLDS`).

CGM events (Danne T. et al., Diabetes Care 40(12), 2017; Battelino T. et al., "Continuous
glucose monitoring and metrics for clinical trials: an international consensus statement",
Lancet Diabetes Endocrinol 11(1), 2023, doi:10.1016/S2213-8587(22)00319-9):
- an event starts when readings stay below 70 mg/dL for at least 15 consecutive minutes and
  ends when they stay at or above 70 for at least 15 consecutive minutes;
- it is a level-2 event when, within it, readings stay below 54 mg/dL for at least 15
  consecutive minutes; an event whose dip below 54 is shorter remains a level-1 event
  (60, 50, 53, 66 mg/dL five minutes apart: 20 minutes below 70, 10 below 54: level 1).
Each event is counted once, at its level. A reading stands for one sensor interval, so a run
of k readings lasts (last - first) + interval: three 5-minute readings, or one 15-minute
reading, make 15 minutes. Readings more than `max_gap` apart are not consecutive (missing
data never extends or starts an event); an event open at such a gap, or at the end of the
data, ends at its last low reading. An event belongs to the instant it starts (its first
low reading): daily counts take each event on the local day it starts, so they add up to
the period's.

Meter data has no continuity between readings; there each reading in the level-1 band and
each reading in the level-2 band is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from core.metrics.bands import THRESHOLDS
from core.metrics.series import (
    BoolArray,
    FloatArray,
    GlucoseSeries,
    MetricsError,
    Source,
    TimeArray,
)

# Consensus minimum duration both to start and to end an event, and of a level-2 dip.
MIN_EPISODE_DURATION = np.timedelta64(15, "m")
# Longest gap between readings still treated as continuous: iglu interpolates across gaps
# up to 45 minutes (`inter_gap = 45`), so a 45-minute sensor dropout inside a low does not
# split it in two.
DEFAULT_MAX_GAP = np.timedelta64(45, "m")

Counted = Literal["events", "readings"]


@dataclass(frozen=True)
class Episode:
    start: np.datetime64  # first low reading
    end: np.datetime64  # last low reading
    nadir: float  # lowest value, in the values' unit


def episode_spans(
    times: TimeArray,
    low: BoolArray,
    interval: np.timedelta64,
    *,
    min_duration: np.timedelta64 = MIN_EPISODE_DURATION,
    max_gap: np.timedelta64 = DEFAULT_MAX_GAP,
) -> list[tuple[int, int]]:
    """(first, last) index of the low readings of each episode, consensus rules.

    Works on runs (maximal stretches of consecutive readings on one side, cut at gaps)
    rather than reading by reading: 90 days of 5-minute CGM are 26,000 readings but a few
    thousand runs. A run flips the state (into or out of an episode) when it lasts
    `min_duration`; shorter runs leave it as it was.
    """
    spans: list[tuple[int, int]] = []
    n = low.size
    if n == 0:
        return spans
    gap_before = np.zeros(n, dtype=np.bool_)
    gap_before[1:] = (times[1:] - times[:-1]) > max_gap
    run_starts = np.flatnonzero(np.concatenate(([True], (low[1:] != low[:-1]) | gap_before[1:])))
    run_ends = np.append(run_starts[1:], n) - 1
    durations = times[run_ends] - times[run_starts] + interval
    in_episode = False
    episode_start = last_low = 0
    for first, last, gap, is_low, long_enough in zip(
        run_starts.tolist(),
        run_ends.tolist(),
        gap_before[run_starts].tolist(),
        low[run_starts].tolist(),
        (durations >= min_duration).tolist(),
        strict=True,
    ):
        if gap and in_episode:  # missing data ends an episode at its last low reading
            spans.append((episode_start, last_low))
            in_episode = False
        if is_low and in_episode:
            last_low = last
        elif is_low and long_enough:
            in_episode, episode_start, last_low = True, first, last
        elif not is_low and in_episode and long_enough:
            spans.append((episode_start, last_low))
            in_episode = False
    if in_episode:
        spans.append((episode_start, last_low))
    return spans


def episodes_below(
    times: TimeArray,
    values: FloatArray,
    threshold: float | FloatArray,
    interval: np.timedelta64,
    *,
    min_duration: np.timedelta64 = MIN_EPISODE_DURATION,
    max_gap: np.timedelta64 = DEFAULT_MAX_GAP,
) -> list[Episode]:
    """Episodes of readings below `threshold` (one number, or one per reading)."""
    spans = episode_spans(
        times, values < threshold, interval, min_duration=min_duration, max_gap=max_gap
    )
    return [Episode(times[a], times[b], float(np.min(values[a : b + 1]))) for a, b in spans]


@dataclass(frozen=True)
class HypoEvent:
    start: np.datetime64  # first reading below 70 mg/dL
    end: np.datetime64  # last reading below 70 mg/dL
    level: int  # 1 or 2
    nadir_mg_dl: float


def hypo_events(
    series: GlucoseSeries,
    interval: np.timedelta64,
    *,
    max_gap: np.timedelta64 = DEFAULT_MAX_GAP,
) -> list[HypoEvent]:
    """The CGM hypoglycaemia events of a series, each at its level (module rules)."""
    times = series.times
    below_70 = series.values < series.limits(lambda u: THRESHOLDS[u].low_below)
    below_54 = series.values < series.limits(lambda u: THRESHOLDS[u].very_low_below)
    # Each run of >= 15 min below 54 lies inside exactly one event (below 54 is below 70,
    # so the run's readings belong to a qualifying run below 70): an event is level 2 when
    # such a run starts within it.
    deep_starts = _long_runs(times, below_54, interval, max_gap)
    spans = episode_spans(times, below_70, interval, max_gap=max_gap)
    if not spans:
        return []
    firsts, lasts = (np.array(side, dtype=np.intp) for side in zip(*spans, strict=True))
    # The first deep run at or after each event's start; the event is level 2 when that run
    # starts before the event's last low reading.
    k = np.searchsorted(deep_starts, firsts)
    padded = np.append(deep_starts, np.iinfo(np.intp).max)
    deep = padded[k] <= lasts
    # Nadir of each [first, last]: reduceat over the bounds, every other result.
    bounds = np.column_stack((firsts, lasts + 1)).ravel()
    mg_dl = np.append(series.values_mg_dl, np.inf)
    nadirs = np.minimum.reduceat(mg_dl, bounds)[::2]
    return [
        HypoEvent(times[a], times[b], 2 if d else 1, float(m))
        for a, b, d, m in zip(firsts, lasts, deep.tolist(), nadirs.tolist(), strict=True)
    ]


def _long_runs(
    times: TimeArray, low: BoolArray, interval: np.timedelta64, max_gap: np.timedelta64
) -> npt.NDArray[np.intp]:
    """First index of each run of consecutive low readings lasting the consensus 15 min."""
    n = low.size
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    breaks = np.ones(n, dtype=np.bool_)
    breaks[1:] = (low[1:] != low[:-1]) | ((times[1:] - times[:-1]) > max_gap)
    starts = np.flatnonzero(breaks)
    ends = np.append(starts[1:], n) - 1
    durations = times[ends] - times[starts] + interval
    found: npt.NDArray[np.intp] = starts[low[starts] & (durations >= MIN_EPISODE_DURATION)]
    return found


@dataclass(frozen=True)
class HypoCounts:
    level1: int
    level2: int
    counted: Counted  # "events" (CGM) or "readings" (meter)


def meter_hypo_flags(series: GlucoseSeries) -> tuple[BoolArray, BoolArray]:
    """(level 1, level 2) per fingerstick reading, each in its own unit."""
    very_low = series.limits(lambda u: THRESHOLDS[u].very_low_below)
    low = series.limits(lambda u: THRESHOLDS[u].low_below)
    values = series.values
    return (values >= very_low) & (values < low), values < very_low


def hypo_counts(series: GlucoseSeries, interval: np.timedelta64 | None = None) -> HypoCounts:
    """Level-1 and level-2 hypoglycaemia: events for CGM, readings for a meter."""
    if series.source is Source.METER:
        level1, level2 = meter_hypo_flags(series)
        return HypoCounts(int(level1.sum()), int(level2.sum()), "readings")
    if interval is None:
        raise MetricsError("CGM events need the sensor interval")
    return counts_of(hypo_events(series, interval))


def counts_of(events: list[HypoEvent]) -> HypoCounts:
    level2 = sum(1 for e in events if e.level == 2)
    return HypoCounts(len(events) - level2, level2, "events")
