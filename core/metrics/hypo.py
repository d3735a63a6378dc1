"""Hypoglycaemia: episodes for CGM data, readings for fingerstick (meter) data.

Levels (International Consensus on Time in Range, Battelino 2019): level 1 is
54 <= g < 70 mg/dL (3.0 <= g < 3.9 mmol/L), level 2 is g < 54 mg/dL (< 3.0 mmol/L), each
judged in the unit the value was measured in (thresholds from `bands.THRESHOLDS`).

CGM episodes (Battelino 2019, after Danne T. et al., Diabetes Care 40(12), 2017): an
episode begins when readings stay below the threshold for at least 15 consecutive minutes
and ends when they stay at or above it for at least 15 consecutive minutes. A reading stands
for one sensor interval, so a run of k readings lasts (last - first) + interval: three
5-minute readings, or one 15-minute reading, make 15 minutes. Readings more than
`max_gap` apart are not consecutive (missing data never extends or starts an episode); an
episode open at such a gap, or at the end of the data, ends at its last low reading.

Counts: `level2` is the number of episodes below 54 mg/dL; `level1` the number of episodes
below 70 mg/dL that never went below 54 (iglu's "lv1_excl"), so one event is not counted
at both levels. Meter data has no continuity between readings; there each reading in the
level-1 band and each reading in the level-2 band is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics.bands import THRESHOLDS
from core.metrics.series import FloatArray, GlucoseSeries, MetricsError, Source, TimeArray

# Consensus minimum duration both to start and to end an episode.
MIN_EPISODE_DURATION = np.timedelta64(15, "m")
# Longest gap between readings still treated as continuous: iglu interpolates across gaps
# up to 45 minutes (`inter_gap = 45`), so a 45-minute sensor dropout inside a low does not
# split it in two.
DEFAULT_MAX_GAP = np.timedelta64(45, "m")


@dataclass(frozen=True)
class Episode:
    start: np.datetime64  # first low reading
    end: np.datetime64  # last low reading
    nadir: float  # lowest value, in the series' unit


def episodes_below(
    times: TimeArray,
    values: FloatArray,
    threshold: float,
    interval: np.timedelta64,
    *,
    min_duration: np.timedelta64 = MIN_EPISODE_DURATION,
    max_gap: np.timedelta64 = DEFAULT_MAX_GAP,
) -> list[Episode]:
    """Episodes of readings below `threshold` (same unit as `values`), consensus rules.

    Works on runs (maximal stretches of consecutive readings on one side of the threshold,
    cut at gaps) rather than reading by reading: 90 days of 5-minute CGM are 26,000 readings
    but a few thousand runs. A run flips the state (into or out of an episode) when it lasts
    `min_duration`; shorter runs leave it as it was.
    """
    episodes: list[Episode] = []
    n = values.size
    if n == 0:
        return episodes
    low = values < threshold
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
            episodes.append(_episode(times, values, episode_start, last_low))
            in_episode = False
        if is_low and in_episode:
            last_low = last
        elif is_low and long_enough:
            in_episode, episode_start, last_low = True, first, last
        elif not is_low and in_episode and long_enough:
            episodes.append(_episode(times, values, episode_start, last_low))
            in_episode = False
    if in_episode:
        episodes.append(_episode(times, values, episode_start, last_low))
    return episodes


def _episode(times: TimeArray, values: FloatArray, first: int, last: int) -> Episode:
    return Episode(
        start=times[first], end=times[last], nadir=float(np.min(values[first : last + 1]))
    )


@dataclass(frozen=True)
class HypoCounts:
    level1: int
    level2: int
    counted: str  # "episodes" (CGM) or "readings" (meter)


def hypo_counts(series: GlucoseSeries, interval: np.timedelta64 | None = None) -> HypoCounts:
    """Level-1 and level-2 hypoglycaemia: episodes for CGM, readings for a meter."""
    t = THRESHOLDS[series.unit]
    if series.source is Source.METER:
        values = series.values
        return HypoCounts(
            level1=int(np.sum((values >= t.very_low_below) & (values < t.low_below))),
            level2=int(np.sum(values < t.very_low_below)),
            counted="readings",
        )
    if interval is None:
        raise MetricsError("CGM episodes need the sensor interval")
    below_70 = episodes_below(series.times, series.values, t.low_below, interval)
    below_54 = episodes_below(series.times, series.values, t.very_low_below, interval)
    return HypoCounts(
        level1=sum(1 for e in below_70 if e.nadir >= t.very_low_below),
        level2=len(below_54),
        counted="episodes",
    )
