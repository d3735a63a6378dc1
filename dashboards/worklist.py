"""The clinician's worklist: who needs attention first, and why. Pure: typed reports in, an
ordered list with its reasons out.

Risk order (documented in the README, shown on the page as reasons):

1. **Lows**: any level-2 low (< 54 mg/dL), or time below range or time very low above its
   consensus goal (< 4 %, < 1 %). Immediate danger. Among them: more time very low first,
   then more time below range, then more level-2 lows.
2. **Very high** above its goal (< 5 %): more time very high first.
3. **Time in range** below its goal (> 70 %): less time in range first.
4. **Other goals missed or data to chase**: time above range (< 25 %), CV (<= 36 %), a GMI
   that rose since the previous period, missing data. Most reasons first.
5. Nothing flagged.

Within a tier, ties fall to the next tier's measure, then to the name (a stable order).
The consensus goals are defined on sensor time; for a meter they are applied to the share of
readings, and the page says "readings" beside those numbers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from core.metrics import GOALS, GoalMetric, Summary
from core.vocabulary import SourceKind

# A meter is synced at least weekly in the demo and in practice every few days; three days
# of silence is worth a call before the visit.
MISSING_AFTER = timedelta(days=3)
# Fewer fingersticks than this a day leave the period's metrics too thin to act on.
MIN_READINGS_PER_DAY = 1.0
# A GMI rise of 0.3 percentage points is about 12 mg/dL of mean glucose: clinically noticed.
GMI_RISE_PP = 0.3

TIER_LOWS, TIER_VERY_HIGH, TIER_TIR, TIER_OTHER, TIER_NONE = range(5)


@dataclass(frozen=True)
class PatientPeriods:
    patient_id: uuid.UUID
    name: str
    zone: tzinfo
    current: Summary | None  # None: no readings in the period
    previous: Summary | None
    last_sync: datetime | None  # when readings last arrived from any of the patient's devices


@dataclass(frozen=True)
class Reason:
    """A reason for attention: a catalogue key and, for a goal, the value beside the goal."""

    key: str
    value_pct: float | None = None
    goal: str | None = None  # "<4 %", ">70 %"


@dataclass(frozen=True)
class WorklistEntry:
    patient_id: uuid.UUID
    name: str
    zone: tzinfo
    source: SourceKind | None
    readings: int
    tir_pct: float | None
    tar_high_pct: float | None  # 181-250 mg/dL
    tar_very_high_pct: float | None  # > 250 mg/dL
    tbr_pct: float | None  # < 70 mg/dL, very low included
    very_low_pct: float | None
    level2: int | None
    gmi_pct: float | None
    gmi_change: float | None
    cv_pct: float | None
    last_sync: datetime | None
    days_since_sync: int | None
    tier: int
    reasons: tuple[Reason, ...] = field(default=())
    missed: frozenset[GoalMetric] = field(default=frozenset())

    @property
    def flagged(self) -> bool:
        return self.tier != TIER_NONE


def _goal_text(metric: GoalMetric) -> str:
    goal = GOALS[metric]
    return f"{goal.comparison}{goal.target_pct:g} %"


def _missed(cur: Summary) -> dict[GoalMetric, float]:
    """The consensus goals this period misses, with the period's value of each."""
    shares = cur.in_ranges
    values: dict[GoalMetric, float | None] = {
        GoalMetric.TIME_IN_RANGE: shares.in_range,
        GoalMetric.TIME_BELOW_RANGE: shares.below_range,
        GoalMetric.TIME_VERY_LOW: shares.very_low,
        GoalMetric.TIME_ABOVE_RANGE: shares.above_range,
        GoalMetric.TIME_VERY_HIGH: shares.very_high,
        GoalMetric.CV: cur.cv_pct,
    }
    return {m: v for m, v in values.items() if v is not None and not GOALS[m].met(v)}


def assess(p: PatientPeriods, now: datetime) -> WorklistEntry:
    cur, prev = p.current, p.previous
    missed = {} if cur is None else _missed(cur)
    reasons: list[Reason] = []

    def goal(metric: GoalMetric, key: str) -> None:
        if metric in missed:
            reasons.append(Reason(key, missed[metric], _goal_text(metric)))

    level2 = None if cur is None else cur.hypoglycaemia.level2
    goal(GoalMetric.TIME_VERY_LOW, "very_low")
    goal(GoalMetric.TIME_BELOW_RANGE, "tbr")
    if level2:
        reasons.append(Reason("level2", float(level2)))
    lows = bool(reasons)
    goal(GoalMetric.TIME_VERY_HIGH, "very_high")
    very_high = GoalMetric.TIME_VERY_HIGH in missed
    goal(GoalMetric.TIME_IN_RANGE, "in_range")
    low_tir = GoalMetric.TIME_IN_RANGE in missed
    goal(GoalMetric.TIME_ABOVE_RANGE, "tar")
    goal(GoalMetric.CV, "cv")
    change = None
    if cur is not None and prev is not None and None not in (cur.gmi_pct, prev.gmi_pct):
        change = float(cur.gmi_pct or 0.0) - float(prev.gmi_pct or 0.0)
    if change is not None and change >= GMI_RISE_PP:
        reasons.append(Reason("gmi_rising", change))
    since = None if p.last_sync is None else now - p.last_sync
    if (
        cur is None
        or since is None
        or since > MISSING_AFTER
        or cur.readings / cur.period.days < MIN_READINGS_PER_DAY
    ):
        reasons.append(Reason("missing"))
    if lows:
        tier = TIER_LOWS
    elif very_high:
        tier = TIER_VERY_HIGH
    elif low_tir:
        tier = TIER_TIR
    elif reasons:
        tier = TIER_OTHER
    else:
        tier = TIER_NONE
    shares = None if cur is None else cur.in_ranges
    return WorklistEntry(
        patient_id=p.patient_id,
        name=p.name,
        zone=p.zone,
        source=None if cur is None else cur.source,
        readings=0 if cur is None else cur.readings,
        tir_pct=None if shares is None else shares.in_range,
        tar_high_pct=None if shares is None else shares.high,
        tar_very_high_pct=None if shares is None else shares.very_high,
        tbr_pct=None if shares is None else shares.below_range,
        very_low_pct=None if shares is None else shares.very_low,
        level2=level2,
        gmi_pct=None if cur is None else cur.gmi_pct,
        gmi_change=change,
        cv_pct=None if cur is None else cur.cv_pct,
        last_sync=p.last_sync,
        days_since_sync=None if since is None else since.days,
        tier=tier,
        reasons=tuple(reasons),
        missed=frozenset(missed),
    )


def _severity(e: WorklistEntry) -> tuple[float, ...]:
    """Worse first within a tier (smaller sorts first)."""
    very_high = -(e.tar_very_high_pct or 0.0)
    tir = e.tir_pct if e.tir_pct is not None else 100.0
    if e.tier == TIER_LOWS:
        return (-(e.very_low_pct or 0.0), -(e.tbr_pct or 0.0), -(e.level2 or 0), very_high, tir)
    if e.tier == TIER_VERY_HIGH:
        return (very_high, tir)
    return (tir, -len(e.reasons))


def _order(e: WorklistEntry) -> tuple[object, ...]:
    return (e.tier, _severity(e), e.name, str(e.patient_id))


def worklist(patients: Sequence[PatientPeriods], now: datetime) -> list[WorklistEntry]:
    """The risk order of the module's docstring."""
    return sorted((assess(p, now) for p in patients), key=_order)
