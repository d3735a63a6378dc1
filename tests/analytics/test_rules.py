"""Alert rules, pure: one alert per episode, escalation, recovery, thresholds per unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.units import Unit, to_mg_dl
from core.vocabulary import RangeFlag
from ingest.alerts.rules import Event, Kind, Reading, Thresholds, advance, past_episodes

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def readings(values: list[float], minutes: int = 5, unit: Unit = Unit.MG_DL) -> list[Reading]:
    return [
        Reading(T0 + timedelta(minutes=minutes * i), T0, v, unit, to_mg_dl(v, unit))
        for i, v in enumerate(values)
    ]


def events(kind: Kind, values: list[float], minutes: int = 5, **kw: object) -> list[Event]:
    return [c.event for c in advance(kind, None, readings(values, minutes), Thresholds())[1]]


def test_six_lows_are_one_episode() -> None:
    found = events(Kind.LOW, [100, 65, 64, 63, 62, 61, 60, 90])
    assert found.count(Event.OPENED) == 1 and Event.CLOSED not in found


def test_fifteen_minutes_back_in_range_closes_and_a_new_low_reopens() -> None:
    found = events(Kind.LOW, [65, 65, 90, 90, 90, 90, 65])
    assert found == [Event.OPENED, Event.EXTENDED, Event.CLOSED, Event.OPENED]


def test_going_below_54_escalates_the_same_alert() -> None:
    episode, changes = advance(Kind.LOW, None, readings([65, 60, 50, 52]), Thresholds())
    assert [c.event for c in changes] == [
        Event.OPENED, Event.EXTENDED, Event.ESCALATED, Event.EXTENDED
    ]  # fmt: skip
    assert episode is not None and episode.level == 2 and episode.extreme_mg_dl == 50


def test_fingersticks_hours_apart_are_separate_episodes() -> None:
    assert events(Kind.LOW, [60, 60], minutes=180).count(Event.OPENED) == 2
    assert events(Kind.LOW, [60, 60], minutes=60).count(Event.OPENED) == 1


def test_thresholds_are_judged_in_the_unit_they_were_set_in() -> None:
    # Clinician: low below 4.0 mmol/L. 3.95 mmol/L is low; 72 mg/dL (3.996 mmol/L) too.
    mine = Thresholds(unit=Unit.MMOL_L, low=4.0, very_low=3.0, high=15.0)
    assert advance(Kind.LOW, None, readings([3.95], unit=Unit.MMOL_L), mine)[0] is not None
    assert advance(Kind.LOW, None, readings([72.0]), mine)[0] is not None
    assert advance(Kind.LOW, None, readings([72.5]), mine)[0] is None
    # Defaults: consensus, in each reading's unit: 3.9 mmol/L is in range (70.26 mg/dL).
    assert advance(Kind.LOW, None, readings([3.9], unit=Unit.MMOL_L), Thresholds())[0] is None


def test_hi_and_lo_raise_the_alert_they_imply_and_history() -> None:
    # A meter's HI is stored at its limit (600 mg/dL) with a range flag; LO at its lower limit.
    # HI opens the high alert even where the clinician's high is above the limit; LO is a
    # level-2 low even where the clinician's very low is below the limit.
    odd = Thresholds(unit=Unit.MG_DL, low=15.0, very_low=5.0, high=700.0)
    hi = [
        Reading(T0, T0, 600, Unit.MG_DL, 600, ("result_too_high",), "m", RangeFlag.ABOVE_RANGE),
        Reading(
            T0 + timedelta(minutes=1), T0, 600, Unit.MG_DL, 600, (), "m", RangeFlag.ABOVE_RANGE
        ),
    ]
    episode, _ = advance(Kind.HIGH, None, hi, odd)
    assert episode is not None and episode.readings == 2 and episode.level == 1
    assert advance(Kind.LOW, None, hi, odd)[0] is None
    lo = [Reading(T0, T0, 20, Unit.MG_DL, 20, ("result_too_low",), "m", RangeFlag.BELOW_RANGE)]
    episode, _ = advance(Kind.LOW, None, lo, odd)
    assert episode is not None and episode.level == 2 and episode.extreme_mg_dl == 20
    assert advance(Kind.HIGH, None, lo, odd)[0] is None
    old = readings([60, 60, 90, 90, 90, 90, 60])
    assert [e.readings for e in past_episodes(Kind.LOW, old, Thresholds())] == [2, 1]
