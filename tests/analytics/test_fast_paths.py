"""The vectorised local-time and run-based episode code give exactly what the obvious
reading-by-reading versions give (kept here as the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core.days import ZoneHistory, ZonePeriod
from core.metrics import Episode, GlucoseSeries, Source, episodes_below, hypo_events
from core.metrics._localtime import local_dates_and_minutes
from core.units import Unit

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/St_Johns", "Pacific/Apia", "Africa/Casablanca", "UTC"]  # fmt: skip
MIN_S, MAX_S = 946_684_800, 2_051_222_400  # 2000-2035


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.lists(st.integers(MIN_S, MAX_S), min_size=1, max_size=50),
)
def test_local_time_matches_asking_the_zone_for_every_instant(zone: str, secs: list[int]) -> None:
    tz = ZoneInfo(zone)
    times = np.array(sorted(secs), dtype="datetime64[s]")
    dates, minutes = local_dates_and_minutes(times, tz)
    for i, s in enumerate(sorted(secs)):
        local = datetime.fromtimestamp(s, UTC).astimezone(tz)
        assert dates[i] == np.datetime64(local.date(), "D")
        assert minutes[i] == local.hour * 60 + local.minute


def test_a_zone_history_follows_travel() -> None:
    moved = datetime(2026, 7, 1, 12, tzinfo=UTC)
    history = ZoneHistory(
        [ZonePeriod(datetime.min.replace(tzinfo=UTC), "Europe/Berlin"),
         ZonePeriod(moved, "Asia/Tokyo")]
    )  # fmt: skip
    naive = moved.replace(tzinfo=None)
    times = np.array([naive - timedelta(seconds=1), naive], dtype="datetime64[s]")
    _, minutes = local_dates_and_minutes(times, history)
    assert minutes.tolist() == [13 * 60 + 59, 21 * 60]  # 13:59:59 CEST, then 21:00 JST


def _reference(
    times: np.ndarray,
    values: np.ndarray,
    threshold: float,
    interval: np.timedelta64,  # type: ignore[type-arg]
) -> list[Episode]:
    min_duration, max_gap = np.timedelta64(15, "m"), np.timedelta64(45, "m")
    out: list[Episode] = []
    in_episode, run_start, start, last = False, None, 0, 0

    def close() -> None:
        out.append(Episode(times[start], times[last], float(np.min(values[start : last + 1]))))

    for i in range(values.size):
        if i > 0 and times[i] - times[i - 1] > max_gap:
            if in_episode:
                close()
                in_episode = False
            run_start = None
        low = bool(values[i] < threshold)
        if in_episode and low:
            last = i
        if low != in_episode:
            if run_start is None:
                run_start = i
            if times[i] - times[run_start] + interval >= min_duration:
                if in_episode:
                    close()
                else:
                    start, last = run_start, i
                in_episode = not in_episode
                run_start = None
        else:
            run_start = None
    if in_episode:
        close()
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 5, 10, 15, 50, 60]), st.sampled_from([50.0, 65.0, 70.0, 90.0])
        ),
        max_size=80,
    ),
    st.sampled_from([1, 5, 15]),
)
def test_run_based_episodes_match_the_reading_by_reading_rules(
    steps: list[tuple[int, float]], interval_min: int
) -> None:
    minutes = np.cumsum([s for s, _ in steps]).astype(np.int64)
    times = (np.datetime64("2026-01-01T00:00:00") + minutes * np.timedelta64(60, "s")).astype(
        "datetime64[s]"
    )
    values = np.array([v for _, v in steps], dtype=np.float64)
    interval = np.timedelta64(interval_min, "m")
    assert episodes_below(times, values, 70.0, interval) == _reference(
        times, values, 70.0, interval
    )


def _reference_levels(
    times: np.ndarray,  # type: ignore[type-arg]
    values: np.ndarray,  # type: ignore[type-arg]
    interval: np.timedelta64,
) -> list[int]:
    """Each event's level, reading by reading: level 2 when, inside the event, consecutive
    readings (no gap over 45 min) below 54 span at least 15 minutes."""
    levels = []
    for event in _reference(times, values, 70.0, interval):
        inside = [i for i in range(values.size) if event.start <= times[i] <= event.end]
        level, run_start = 1, None
        for i in inside:
            gap = i > inside[0] and times[i] - times[i - 1] > np.timedelta64(45, "m")
            if values[i] < 54.0:
                if run_start is None or gap:
                    run_start = i
                if times[i] - times[run_start] + interval >= np.timedelta64(15, "m"):
                    level = 2
            else:
                run_start = None
        levels.append(level)
    return levels


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 5, 10, 15, 50]), st.sampled_from([45.0, 53.0, 60.0, 70.0, 90.0])
        ),
        max_size=80,
    ),
    st.sampled_from([1, 5, 15]),
)
def test_event_levels_match_the_reading_by_reading_rule(
    steps: list[tuple[int, float]], interval_min: int
) -> None:
    minutes = np.cumsum([s for s, _ in steps]).astype(np.int64)
    times = (np.datetime64("2026-01-01T00:00:00") + minutes * np.timedelta64(60, "s")).astype(
        "datetime64[s]"
    )
    values = np.array([v for _, v in steps], dtype=np.float64)
    interval = np.timedelta64(interval_min, "m")
    series = GlucoseSeries.build(times, values, Unit.MG_DL, Source.CGM)
    events = hypo_events(series, interval)
    assert [e.level for e in events] == _reference_levels(times, values, interval)
    assert [(e.start, e.end) for e in events] == [
        (e.start, e.end) for e in _reference(times, values, 70.0, interval)
    ]
