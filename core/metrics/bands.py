"""Glucose bands of the International Consensus on Time in Range.

Battelino T. et al., "Clinical Targets for Continuous Glucose Monitoring Data
Interpretation", Diabetes Care 42(8), 2019 (doi:10.2337/dci19-0028):

    very low  <54 mg/dL (<3.0 mmol/L)          level 2 hypoglycaemia
    low       54-69 mg/dL (3.0-3.8 mmol/L)      level 1 hypoglycaemia
    in range  70-180 mg/dL (3.9-10.0 mmol/L)
    high      181-250 mg/dL (10.1-13.9 mmol/L)  level 1 hyperglycaemia
    very high >250 mg/dL (>13.9 mmol/L)         level 2 hyperglycaemia

The consensus writes integer mg/dL ranges; on real-valued readings the edges are:
very low v < 54; low 54 <= v < 70; in range 70 <= v <= 180; high 180 < v <= 250;
very high v > 250. This is also the convention of the iglu R package, whose published
values our tests compare against: `below_percent` counts `gl < target`, `in_range_percent`
counts `lower <= gl <= upper` (both ends inclusive) and `above_percent` counts
`gl > target`.

A value is classified in the unit it was measured in, against that unit's own thresholds,
so a boundary never moves through a conversion: 3.9 mmol/L is in range even though
3.9 x 18.016 = 70.26 mg/dL, and 3.8 mmol/L (68.5 mg/dL) is low; 10.0 mmol/L (180.16 mg/dL)
is in range and 13.9 mmol/L (250.4 mg/dL) high. A series that mixes units is classified
reading by reading, each in its own unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from core.metrics.series import EmptySeriesError, GlucoseSeries
from core.units import Unit


class Band(StrEnum):
    VERY_LOW = "very_low"
    LOW = "low"
    IN_RANGE = "in_range"
    HIGH = "high"
    VERY_HIGH = "very_high"


@dataclass(frozen=True)
class BandThresholds:
    """The four cut points of the consensus bands in one unit."""

    very_low_below: float  # v < this is very low (level 2 hypoglycaemia)
    low_below: float  # v < this is low or very low (any hypoglycaemia)
    high_above: float  # v > this is high or very high
    very_high_above: float  # v > this is very high


# The consensus's own numbers in each unit, not conversions of each other: meters that
# display mmol/L are judged against the mmol/L targets patients are taught.
THRESHOLDS: dict[Unit, BandThresholds] = {
    Unit.MG_DL: BandThresholds(
        very_low_below=54.0, low_below=70.0, high_above=180.0, very_high_above=250.0
    ),
    Unit.MMOL_L: BandThresholds(
        very_low_below=3.0, low_below=3.9, high_above=10.0, very_high_above=13.9
    ),
}

BAND_ORDER = (Band.VERY_LOW, Band.LOW, Band.IN_RANGE, Band.HIGH, Band.VERY_HIGH)


def band_codes(series: GlucoseSeries) -> npt.NDArray[np.int8]:
    """Index into `BAND_ORDER` for each reading (0 = very low ... 4 = very high), each
    judged against its own unit's thresholds."""
    values = series.values
    codes = np.full(values.shape, 2, dtype=np.int8)
    codes[values < series.limits(lambda u: THRESHOLDS[u].low_below)] = 1
    codes[values < series.limits(lambda u: THRESHOLDS[u].very_low_below)] = 0
    codes[values > series.limits(lambda u: THRESHOLDS[u].high_above)] = 3
    codes[values > series.limits(lambda u: THRESHOLDS[u].very_high_above)] = 4
    return codes


def classify(value: float, unit: Unit) -> Band:
    """The band of one reading, judged in the unit it was measured in."""
    t = THRESHOLDS[unit]
    if value < t.very_low_below:
        return Band.VERY_LOW
    if value < t.low_below:
        return Band.LOW
    if value > t.very_high_above:
        return Band.VERY_HIGH
    if value > t.high_above:
        return Band.HIGH
    return Band.IN_RANGE


@dataclass(frozen=True)
class BandPercentages:
    """Share of readings in each band, in percent; the five add up to 100."""

    very_low: float
    low: float
    in_range: float
    high: float
    very_high: float

    @property
    def below_range(self) -> float:
        """Below 70 mg/dL (3.9 mmol/L), very low included: the consensus's "TBR"."""
        return self.very_low + self.low

    @property
    def above_range(self) -> float:
        """Above 180 mg/dL (10.0 mmol/L), very high included: the consensus's "TAR"."""
        return self.high + self.very_high


def band_percentages(series: GlucoseSeries) -> BandPercentages:
    """Percent of readings per band (of readings, not of interpolated time, as iglu does)."""
    if len(series) == 0:
        raise EmptySeriesError("band percentages need at least one reading")
    counts = np.bincount(band_codes(series), minlength=len(BAND_ORDER))
    pct = counts * 100.0 / len(series)
    return BandPercentages(
        very_low=float(pct[0]),
        low=float(pct[1]),
        in_range=float(pct[2]),
        high=float(pct[3]),
        very_high=float(pct[4]),
    )
