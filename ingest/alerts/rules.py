"""Alert rules, pure: readings in, episode changes out.

One alert per episode, not per reading. An episode of a reading rule (low, high) opens on
the first matching reading and takes in every matching reading after it. It closes at its
last matching reading once a reading that does not match comes `MIN_RECOVERY` or more after
it (the consensus's 15 minutes, so a CGM has to stay out of the low for 15 minutes, and one
good fingerstick after a treated low closes it),
or when nothing matched for `MAX_SILENCE`, after which a matching reading starts a new one.
A low that goes below the level-2 threshold escalates its alert (a new page, same alert).

Thresholds are compared in the unit the reading was measured in when the clinician set them
in that unit, so a boundary never moves through a conversion (DESIGN.md).

A meter's HI or LO (a result beyond what it can measure, stored with its limit as the value
and a range flag) raises the alert it implies whatever the thresholds: HI the high alert,
LO the low alert at level 2 (below every meter's lower limit is below 54 mg/dL). They used to
be separate kinds, raised from the sensor status bits; those kinds stay readable in stored
alerts but are no longer raised, so one HI is one page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from core.metrics import THRESHOLDS
from core.units import Unit, to_mg_dl
from core.vocabulary import RangeFlag

# The consensus's minimum duration to end an episode (Battelino 2019, after Danne 2017).
MIN_RECOVERY = timedelta(minutes=15)
# A fingerstick low re-tested within two hours is the same event (the "15-15 rule" repeats
# every 15 minutes); later than that, a low is a new event that deserves a new page.
MAX_SILENCE = timedelta(hours=2)
# Meters are synced every day or two at home; a week without a sync means the bridge or
# the habit is broken.
DEFAULT_METER_SYNC_DAYS = 7
# The consensus goal for time below 70 mg/dL is under 4 % over 14 days.
DEFAULT_TIME_BELOW_RANGE_PCT = 4.0
TIME_BELOW_RANGE_WINDOW = timedelta(days=14)
# Below this many readings in 14 days a percentage says more about chance than about the
# patient (two lows in ten fingersticks are 20 %); the care-team rule waits for more data.
MIN_READINGS_FOR_TIME_BELOW_RANGE = 28
# The level a LO implies: below the meter's lower limit (10-20 mg/dL) is level 2 (< 54).
LEVEL_OF_LO = 2


class Kind(StrEnum):
    LOW = "low"
    HIGH = "high"
    # Raised before HI / LO became readings (from the sensor status bits); kept so stored
    # alerts of these kinds still read, never raised now.
    METER_RESULT_TOO_HIGH = "meter_result_too_high"
    METER_RESULT_TOO_LOW = "meter_result_too_low"
    NO_READINGS = "no_readings"
    METER_NOT_SYNCED = "meter_not_synced"
    TIME_BELOW_RANGE = "time_below_range"


READING_KINDS = (Kind.LOW, Kind.HIGH)


@dataclass(frozen=True)
class Thresholds:
    """A patient's alert thresholds; `unit` None means the consensus levels in the unit of
    each reading (the defaults for a patient whose clinician set nothing)."""

    unit: Unit | None = None
    low: float | None = None
    very_low: float | None = None
    high: float | None = None
    max_hours_without_reading: float | None = None
    meter_sync_days: int = DEFAULT_METER_SYNC_DAYS
    time_below_range_pct: float = DEFAULT_TIME_BELOW_RANGE_PCT

    def limits(self, unit: Unit) -> tuple[float, float, float]:
        """(very_low, low, high) in `unit`: the clinician's own numbers when set in that unit.
        The default high alert is consensus level-2 hyperglycaemia (> 250 mg/dL)."""
        if self.unit is None or self.low is None or self.very_low is None or self.high is None:
            t = THRESHOLDS[unit]
            return t.very_low_below, t.low_below, t.very_high_above
        if self.unit is unit:
            return self.very_low, self.low, self.high
        factor = to_mg_dl(1.0, self.unit) / to_mg_dl(1.0, unit)
        return self.very_low * factor, self.low * factor, self.high * factor


@dataclass(frozen=True)
class Reading:
    measured_at: datetime
    received_at: datetime
    value: float  # as measured, in `unit`
    unit: Unit
    mg_dl: float
    sensor_status: tuple[str, ...] = ()
    device: str = ""  # the meter (or other device) that measured it
    range_flag: RangeFlag | None = None  # HI / LO: the value is the meter's limit


@dataclass(frozen=True)
class Episode:
    kind: Kind
    level: int
    started_at: datetime
    last_at: datetime  # last matching reading
    extreme_mg_dl: float  # nadir of a low, peak otherwise
    readings: int
    alert_id: int | None = None  # set once stored


class Event(StrEnum):
    OPENED = "opened"
    ESCALATED = "escalated"
    EXTENDED = "extended"
    CLOSED = "closed"


@dataclass(frozen=True)
class Change:
    event: Event
    episode: Episode


def level_of(kind: Kind, reading: Reading, thresholds: Thresholds) -> int:
    """0 when the reading does not match the rule, else the alert level it calls for."""
    very_low, low, high = thresholds.limits(reading.unit)
    if kind is Kind.LOW:
        if reading.range_flag is RangeFlag.BELOW_RANGE:
            return LEVEL_OF_LO
        if reading.range_flag is RangeFlag.ABOVE_RANGE:
            return 0
        return 2 if reading.value < very_low else 1 if reading.value < low else 0
    if kind is Kind.HIGH:
        if reading.range_flag is not None:
            return 1 if reading.range_flag is RangeFlag.ABOVE_RANGE else 0
        return 1 if reading.value > high else 0
    return 0


def _worse(kind: Kind, a: float, b: float) -> float:
    return min(a, b) if kind is Kind.LOW else max(a, b)


def advance(
    kind: Kind, episode: Episode | None, readings: Sequence[Reading], thresholds: Thresholds
) -> tuple[Episode | None, list[Change]]:
    """Feed readings (sorted by measured_at) to the rule; returns the open episode after
    them and what changed. A reading older than the open episode's last one still counts
    towards it when it matches, and is otherwise ignored (it says nothing about now)."""
    changes: list[Change] = []
    for r in readings:
        level = level_of(kind, r, thresholds)
        if episode is not None and r.measured_at <= episode.last_at:
            if level and r.measured_at >= episode.started_at:
                episode = replace(
                    episode,
                    readings=episode.readings + 1,
                    extreme_mg_dl=_worse(kind, episode.extreme_mg_dl, r.mg_dl),
                )
                changes.append(Change(Event.EXTENDED, episode))
            continue
        if episode is not None:
            since = r.measured_at - episode.last_at
            if (not level and since >= MIN_RECOVERY) or (level and since > MAX_SILENCE):
                changes.append(Change(Event.CLOSED, episode))
                episode = None
        if not level:
            continue
        if episode is None:
            episode = Episode(kind, level, r.measured_at, r.measured_at, r.mg_dl, 1)
            changes.append(Change(Event.OPENED, episode))
            continue
        escalated = level > episode.level
        episode = replace(
            episode,
            level=max(level, episode.level),
            last_at=r.measured_at,
            readings=episode.readings + 1,
            extreme_mg_dl=_worse(kind, episode.extreme_mg_dl, r.mg_dl),
        )
        changes.append(Change(Event.ESCALATED if escalated else Event.EXTENDED, episode))
    return episode, changes


def past_episodes(kind: Kind, readings: Sequence[Reading], thresholds: Thresholds) -> list[Episode]:
    """Episodes in readings synced long after the fact: all of them closed, for the record."""
    found: list[Episode] = []
    episode: Episode | None = None
    for change in advance(kind, None, readings, thresholds)[1]:
        if change.event is Event.CLOSED:
            found.append(change.episode)
        episode = None if change.event is Event.CLOSED else change.episode
    if episode is not None:
        found.append(episode)
    return found
