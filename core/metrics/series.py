"""The input every metric takes: one patient's glucose readings of one source over a period.

A `GlucoseSeries` holds the values as measured, each with the unit it was measured in (a
patient may have a meter in mg/dL and another in mmol/L), their instants in UTC, where they
came from (CGM or fingerstick meter) and, for meter data, the meal context. Every band,
target and limit is applied to a reading in its own unit (`GlucoseSeries.limits`), so a
boundary never moves through a conversion; statistics over readings (mean, SD, GMI, LBGI)
use the mg/dL values (`values_mg_dl`). Control-solution readings are removed when the series
is built, so no metric can count them by accident; the series remembers how many it dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from core.units import MG_DL_PER_MMOL_L, Unit
from core.vocabulary import MealTag, SourceKind

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]

# Instants are kept as whole seconds since the epoch, UTC: meters and sensors stamp to the
# second, and a single resolution keeps arithmetic between arrays exact.
TIME_DTYPE = np.dtype("datetime64[s]")

# The vocabulary's names (core.vocabulary), under the names the metrics have always used.
Source = SourceKind
MealContext = MealTag
# The sources a clinical report is computed for; laboratory results are single values sent
# by another system, not a series to summarise.
REPORT_SOURCES = (SourceKind.CGM, SourceKind.METER)


class MetricsError(ValueError):
    """Root of the errors the metrics raise for input they cannot use."""


class EmptySeriesError(MetricsError):
    """A metric needs at least one (non-control) reading."""


@dataclass(frozen=True, eq=False)
class GlucoseSeries:
    """One patient's readings of one source, sorted by time, control solution removed.

    Build it with `GlucoseSeries.build`, which validates, sorts and filters; the fields are
    read-only arrays of equal length.
    """

    times: TimeArray  # UTC instants, datetime64[s], ascending
    values: FloatArray  # as measured, each in its own unit (see `mmol`)
    mmol: BoolArray  # True where the reading was measured in mmol/L, False for mg/dL
    source: Source
    meals: tuple[MealContext | None, ...] | None = None  # meter meal tags, aligned with values
    control_excluded: int = 0  # control-solution readings dropped when building
    values_mg_dl: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.values.ndim != 1 or not self.times.shape == self.values.shape == self.mmol.shape:
            raise MetricsError("times, values and units must be 1-D arrays of the same length")
        if self.meals is not None and len(self.meals) != len(self.values):
            raise MetricsError("meals must be aligned with values")
        if self.source not in REPORT_SOURCES:
            raise MetricsError(f"a glucose series is CGM or meter readings, not {self.source}")
        mg_dl = np.where(self.mmol, self.values * MG_DL_PER_MMOL_L, self.values)
        for array in (self.times, self.values, self.mmol, mg_dl):
            array.setflags(write=False)
        object.__setattr__(self, "values_mg_dl", mg_dl)

    @classmethod
    def build(
        cls,
        times: Sequence[datetime] | TimeArray,
        values: Sequence[float] | FloatArray,
        unit: Unit | Sequence[Unit] | BoolArray,
        source: Source,
        *,
        control: Sequence[bool] | BoolArray | None = None,
        meals: Sequence[MealContext | None] | None = None,
    ) -> GlucoseSeries:
        """Validate, drop control-solution readings, and sort by time.

        `times` are aware datetimes or datetime64 values already in UTC. `unit` is the unit
        of every value, or one unit per value (or a boolean array, True for mmol/L).
        `control` marks control-solution readings (GLS sample type 10); they never reach a
        metric.
        """
        time_array = _to_utc_seconds(times)
        value_array = np.asarray(values, dtype=np.float64)
        if time_array.shape != value_array.shape:
            raise MetricsError(
                f"{time_array.size} times but {value_array.size} values; they must pair up"
            )
        if not np.all(np.isfinite(value_array)) or np.any(value_array <= 0):
            raise MetricsError("glucose values must be finite and positive")
        mmol_array = _mmol_flags(unit, value_array.size)
        keep = np.ones(value_array.shape, dtype=np.bool_)
        if control is not None:
            control_array = np.asarray(control, dtype=np.bool_)
            if control_array.shape != value_array.shape:
                raise MetricsError("control flags must be aligned with values")
            keep = ~control_array
        meal_list = list(meals) if meals is not None else None
        if meal_list is not None and len(meal_list) != value_array.size:
            raise MetricsError("meals must be aligned with values")
        kept_index = np.flatnonzero(keep)
        order = kept_index[np.argsort(time_array[kept_index], kind="stable")]
        return cls(
            times=time_array[order],
            values=value_array[order],
            mmol=mmol_array[order],
            source=source,
            meals=tuple(meal_list[i] for i in order) if meal_list is not None else None,
            control_excluded=int(value_array.size - kept_index.size),
        )

    def __len__(self) -> int:
        return int(self.values.size)

    def limits(self, limit: Callable[[Unit], float]) -> FloatArray:
        """Per reading, `limit(unit)` in the unit that reading was measured in: compare
        `values` with it and every reading is judged by its own unit's number."""
        return np.where(self.mmol, limit(Unit.MMOL_L), limit(Unit.MG_DL))

    def select(self, mask: BoolArray) -> GlucoseSeries:
        """The readings where `mask` is True, as a series of the same source."""
        meals = self.meals
        return GlucoseSeries(
            times=self.times[mask],
            values=self.values[mask],
            mmol=self.mmol[mask],
            source=self.source,
            meals=tuple(meals[i] for i in np.flatnonzero(mask).tolist())
            if meals is not None
            else None,
        )


def _mmol_flags(unit: Unit | Sequence[Unit] | BoolArray, n: int) -> BoolArray:
    if isinstance(unit, str):  # one unit for every value
        return np.full(n, Unit(unit) is Unit.MMOL_L, dtype=np.bool_)
    if isinstance(unit, np.ndarray) and unit.dtype == np.bool_:
        flags: BoolArray = unit.copy()
    else:
        flags = np.array([Unit(u) is Unit.MMOL_L for u in unit], dtype=np.bool_)
    if flags.shape != (n,):
        raise MetricsError("units must be aligned with values")
    return flags


def _to_utc_seconds(times: Sequence[datetime] | TimeArray) -> TimeArray:
    if isinstance(times, np.ndarray):
        if not np.issubdtype(times.dtype, np.datetime64):
            raise MetricsError(f"times must be datetime64, not {times.dtype}")
        return times.astype(TIME_DTYPE)
    seconds = []
    for instant in times:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise MetricsError(f"time {instant.isoformat()} has no zone; give an instant")
        seconds.append(int(instant.timestamp()))
    return np.array(seconds, dtype="int64").astype(TIME_DTYPE)
