"""The input every metric takes: one patient's glucose readings over a period.

A `GlucoseSeries` holds the values as measured (in the unit the meter or sensor reported),
their instants in UTC, where they came from (CGM or fingerstick meter) and, for meter data,
the meal context. Control-solution readings are removed when the series is built, so no
metric can count them by accident; the series remembers how many it dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from core.units import MG_DL_PER_MMOL_L, Unit

FloatArray = npt.NDArray[np.float64]
TimeArray = npt.NDArray[np.datetime64]
BoolArray = npt.NDArray[np.bool_]

# Instants are kept as whole seconds since the epoch, UTC: meters and sensors stamp to the
# second, and a single resolution keeps arithmetic between arrays exact.
TIME_DTYPE = np.dtype("datetime64[s]")


class Source(StrEnum):
    """Where readings come from; decides how hypoglycaemia is counted."""

    CGM = "cgm"  # continuous sensor, a reading every few minutes
    METER = "meter"  # fingerstick glucometer, a handful of readings a day


class MealContext(StrEnum):
    """Meal tag of a meter reading; same spelling as the MQTT contract's `meal` field."""

    BEFORE_MEAL = "before_meal"
    AFTER_MEAL = "after_meal"
    FASTING = "fasting"
    CASUAL = "casual"
    BEDTIME = "bedtime"


class MetricsError(ValueError):
    """Root of the errors the metrics raise for input they cannot use."""


class EmptySeriesError(MetricsError):
    """A metric needs at least one (non-control) reading."""


@dataclass(frozen=True, eq=False)
class GlucoseSeries:
    """One patient's readings, sorted by time, control solution already removed.

    Build it with `GlucoseSeries.build`, which validates, sorts and filters; the fields are
    read-only arrays of equal length.
    """

    times: TimeArray  # UTC instants, datetime64[s], ascending
    values: FloatArray  # as measured, in `unit`; bands are classified on these
    unit: Unit
    source: Source
    meals: tuple[MealContext | None, ...] | None = None  # meter meal tags, aligned with values
    control_excluded: int = 0  # control-solution readings dropped when building
    values_mg_dl: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.times.shape != self.values.shape or self.values.ndim != 1:
            raise MetricsError("times and values must be 1-D arrays of the same length")
        if self.meals is not None and len(self.meals) != len(self.values):
            raise MetricsError("meals must be aligned with values")
        factor = 1.0 if self.unit is Unit.MG_DL else MG_DL_PER_MMOL_L
        mg_dl = self.values * factor
        for array in (self.times, self.values, mg_dl):
            array.setflags(write=False)
        object.__setattr__(self, "values_mg_dl", mg_dl)

    @classmethod
    def build(
        cls,
        times: Sequence[datetime] | TimeArray,
        values: Sequence[float] | FloatArray,
        unit: Unit,
        source: Source,
        *,
        control: Sequence[bool] | BoolArray | None = None,
        meals: Sequence[MealContext | None] | None = None,
    ) -> GlucoseSeries:
        """Validate, drop control-solution readings, and sort by time.

        `times` are aware datetimes or datetime64 values already in UTC. `control` marks
        control-solution readings (GLS sample type 10); they never reach a metric.
        """
        time_array = _to_utc_seconds(times)
        value_array = np.asarray(values, dtype=np.float64)
        if time_array.shape != value_array.shape:
            raise MetricsError(
                f"{time_array.size} times but {value_array.size} values; they must pair up"
            )
        if not np.all(np.isfinite(value_array)) or np.any(value_array <= 0):
            raise MetricsError("glucose values must be finite and positive")
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
            unit=unit,
            source=source,
            meals=tuple(meal_list[i] for i in order) if meal_list is not None else None,
            control_excluded=int(value_array.size - kept_index.size),
        )

    def __len__(self) -> int:
        return int(self.values.size)


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
