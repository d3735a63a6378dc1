"""The clinician's worklist: who needs attention first, and why. Pure: summaries in, an
ordered list out.

A patient is flagged for each of: time below range above the consensus goal, any level-2
low, missing data (no reading for days, or too few readings a day to judge), and a GMI
that rose since the previous period. Patients are ordered by how many flags they carry,
then by time below range, level-2 lows and the GMI rise: lows first, because they are the
immediate danger.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.metrics import GOALS, GoalMetric, Summary

# Consensus goal for time below 70 mg/dL (very low and low together): under 4 % (for
# fingersticks, applied to the share of readings below 70).
TBR_GOAL_PCT = GOALS[GoalMetric.TIME_BELOW_RANGE].target_pct
# A meter is synced at least weekly in the demo and in practice every few days; three days
# of silence is worth a call before the visit.
MISSING_AFTER = timedelta(days=3)
# Fewer fingersticks than this a day leave the period's metrics too thin to act on.
MIN_READINGS_PER_DAY = 1.0
# A GMI rise of 0.3 percentage points is about 12 mg/dL of mean glucose: clinically noticed.
GMI_RISE_PP = 0.3


@dataclass(frozen=True)
class PatientPeriods:
    patient_id: uuid.UUID
    name: str
    current: Summary | None  # None: no readings in the period
    previous: Summary | None
    last_reading: datetime | None


@dataclass(frozen=True)
class WorklistEntry:
    patient_id: uuid.UUID
    name: str
    tbr_pct: float | None
    level2: int | None
    gmi_pct: float | None
    gmi_change: float | None
    last_reading: datetime | None
    flags: tuple[str, ...] = field(default=())  # catalogue keys: tbr, level2, missing, ...


def assess(p: PatientPeriods, now: datetime) -> WorklistEntry:
    flags: list[str] = []
    cur, prev = p.current, p.previous
    tbr = None if cur is None else cur.in_ranges.below_range
    if tbr is not None and tbr >= TBR_GOAL_PCT:
        flags.append("tbr")
    if cur is not None and cur.hypoglycaemia.level2 > 0:
        flags.append("level2")
    if (
        cur is None
        or p.last_reading is None
        or now - p.last_reading > MISSING_AFTER
        or cur.readings_per_day < MIN_READINGS_PER_DAY
    ):
        flags.append("missing")
    change = None
    if (
        cur is not None
        and prev is not None
        and cur.gmi_pct is not None
        and prev.gmi_pct is not None
    ):
        change = cur.gmi_pct - prev.gmi_pct
    if change is not None and change >= GMI_RISE_PP:
        flags.append("gmi_rising")
    return WorklistEntry(
        patient_id=p.patient_id,
        name=p.name,
        tbr_pct=tbr,
        level2=None if cur is None else cur.hypoglycaemia.level2,
        gmi_pct=None if cur is None else cur.gmi_pct,
        gmi_change=change,
        last_reading=p.last_reading,
        flags=tuple(flags),
    )


def worklist(patients: Sequence[PatientPeriods], now: datetime) -> list[WorklistEntry]:
    """Most flags first; among equals, more time below range, more level-2 lows, larger
    GMI rise; then by name so the order is stable."""
    entries = [assess(p, now) for p in patients]
    return sorted(
        entries,
        key=lambda e: (
            -len(e.flags),
            -(e.tbr_pct or 0.0),
            -(e.level2 or 0),
            -(e.gmi_change or 0.0),
            e.name,
        ),
    )
