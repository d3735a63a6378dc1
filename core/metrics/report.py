"""The clinical report of one source over one period: the typed answer `glucobridge metrics`
prints and `GET .../trends` returns (one model, so the two cannot drift apart).

Every key is named here with its type. Glucose values are in the report's `unit` (keys carry
no unit; `unit` says it); shares are percent of readings; counts are counts. A CGM report
speaks of time (time in ranges, hypoglycaemia events, % of the period the sensor was
active) and carries the consensus goals; a meter report speaks of readings (readings in
ranges, readings per day, hypoglycaemic readings, pre/post-meal pairs) and carries a GMI and
an AGP only when its data meet the sufficiency rule (`core.metrics.sufficiency`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.metrics.goals import Comparison, GoalMetric
from core.metrics.hypo import Counted
from core.units import Unit
from core.vocabulary import SourceKind


class _Model(BaseModel):
    # No key outside the model: the OpenAPI document names every key of a report.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeriodOut(_Model):
    start: datetime = Field(description="inclusive")
    end: datetime = Field(description="exclusive")
    days: float = Field(description="length in days of 24 h (13.96 across a spring DST change)")


class BandShares(_Model):
    """Percent of readings in each consensus band; the five add up to 100. Each reading is
    classified in the unit it was measured in."""

    very_low: float = Field(description="< 54 mg/dL (< 3.0 mmol/L), level-2 hypoglycaemia")
    low: float = Field(description="54-69 mg/dL (3.0-3.8 mmol/L), level-1 hypoglycaemia")
    in_range: float = Field(description="70-180 mg/dL (3.9-10.0 mmol/L)")
    high: float = Field(description="181-250 mg/dL (10.1-13.9 mmol/L)")
    very_high: float = Field(description="> 250 mg/dL (> 13.9 mmol/L)")

    @property
    def below_range(self) -> float:
        """< 70 mg/dL (3.9 mmol/L), very low included."""
        return self.very_low + self.low

    @property
    def above_range(self) -> float:
        """> 180 mg/dL (10.0 mmol/L), very high included."""
        return self.high + self.very_high


class BandLimits(_Model):
    """The consensus cut points in the report's unit (for display: each reading is judged
    against its own unit's numbers)."""

    very_low_below: float
    low_below: float
    high_above: float
    very_high_above: float


class GoalCheck(_Model):
    """A consensus goal (Battelino 2019) beside this period's value."""

    metric: GoalMetric
    comparison: Comparison = Field(description="value <comparison> goal_pct meets the goal")
    goal_pct: float
    value_pct: float | None
    met: bool | None = Field(description="None when the value is undefined")


class Hypoglycaemia(_Model):
    counted: Counted = Field(description="events (CGM, consensus rules) or readings (meter)")
    level1: int = Field(description="< 70 mg/dL (3.9 mmol/L) that never held 15 min < 54")
    level2: int = Field(description="< 54 mg/dL (3.0 mmol/L) for 15 min (CGM); a reading (meter)")


class AgpBinOut(_Model):
    minute_of_day: int = Field(description="local start of the bin, 0 = midnight")
    readings: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


class CgmSufficiency(_Model):
    """Consensus: 14 days with the sensor active >= 70 % of the requested period."""

    required_days: int
    required_active_pct: float
    interval_minutes: int = Field(description="sensor interval (median spacing of readings)")
    active_pct: float = Field(description="readings received / readings expected over the period")
    met: bool


class MeterSufficiency(_Model):
    """Enough fingersticks for GMI and an AGP: the period covers `required_days` and on
    `required_share_of_days_pct` of its days there are `min_readings_per_day` readings."""

    required_days: int
    min_readings_per_day: int
    required_share_of_days_pct: float
    days_with_readings: int
    days_meeting_minimum: int
    met: bool


class TagStats(_Model):
    readings: int
    mean: float | None
    pct_in_target: float | None = Field(description="ADA target of the tag, per reading's unit")


class MealTargets(_Model):
    """ADA's targets in the report's unit: fasting and before meals, after meals."""

    before_low: float
    before_high: float
    after_below: float


class Meals(_Model):
    fasting: TagStats
    before_meal: TagStats
    after_meal: TagStats
    pairs: int = Field(description="fasting or before-meal reading + after-meal 1-3 h later")
    pairs_opened_by_fasting: int
    unpaired_after_meal: int = Field(description="after-meal readings in no pair")
    mean_before: float | None = Field(description="mean of the paired opening readings")
    mean_after: float | None
    mean_rise: float | None
    targets: MealTargets


class CgmReport(_Model):
    source: Literal[SourceKind.CGM] = SourceKind.CGM
    unit: Unit
    period: PeriodOut
    readings: int
    mean: float
    sd: float | None = Field(description="sample SD; None below two readings")
    cv_pct: float | None
    gmi_pct: float = Field(description="3.31 + 0.02392 x mean mg/dL (Bergenstal 2018)")
    time_in_ranges: BandShares
    limits: BandLimits
    lbgi: float
    hbgi: float
    hypoglycaemia: Hypoglycaemia
    sufficiency: CgmSufficiency
    goals: list[GoalCheck]
    agp_bin_minutes: int
    agp: list[AgpBinOut]

    @property
    def in_ranges(self) -> BandShares:
        return self.time_in_ranges

    @property
    def readings_per_day(self) -> float:
        return self.readings / self.period.days


class MeterReport(_Model):
    source: Literal[SourceKind.METER] = SourceKind.METER
    unit: Unit
    period: PeriodOut
    readings: int
    readings_per_day: float = Field(description="readings / days of the requested period")
    mean: float
    sd: float | None = Field(description="sample SD; None below two readings")
    cv_pct: float | None
    readings_in_ranges: BandShares
    limits: BandLimits
    lbgi: float
    hbgi: float
    hypoglycaemia: Hypoglycaemia
    meals: Meals
    sufficiency: MeterSufficiency
    gmi_pct: float | None = Field(description="only when `sufficiency.met`")
    agp_bin_minutes: int
    agp: list[AgpBinOut] | None = Field(description="only when `sufficiency.met`")

    @property
    def in_ranges(self) -> BandShares:
        return self.readings_in_ranges


Report = Annotated[CgmReport | MeterReport, Field(discriminator="source")]
