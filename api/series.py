"""Fetching one patient's readings of one source over a period as a `GlucoseSeries`.

SQL only fetches: one aggregate row of arrays per period (a 90-day CGM period is 26,000
readings; arrays cross the wire as one value each and land in numpy without a Python object
per reading). Readings come from `counted_readings`, so control-solution tests, readings of
unclaimed meters (and anything else that does not count) never reach a metric; the control
tests of the period are counted for the report.

Clinical reports are per source (DESIGN.md): a series holds one source's readings only. When
the caller does not name one, it is CGM if the patient has sensor data in the period, the
meter otherwise; the readings of the other sources are counted, not used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from psycopg import AsyncConnection

from core.metrics import GlucoseSeries, MealContext, Source
from core.units import Unit

# Per source in one pass (the partial index readings_counted_series serves it); values as
# big-endian binary: float8send/int8send joined by string_agg into one bytea per column,
# which numpy reads directly. Meals are only fetched where a caller needs them.
_SERIES = """
SELECT source,
       count(*),
       count(*) FILTER (WHERE unit = 'mmol/L'),
       string_agg(int8send(extract(epoch FROM measured_at)::int8), ''::bytea
                  ORDER BY measured_at),
       string_agg(float8send(value), ''::bytea ORDER BY measured_at),
       string_agg(float8send(mg_dl), ''::bytea ORDER BY measured_at),
       CASE WHEN %(meals)s THEN array_agg(meal ORDER BY measured_at) END
FROM counted_readings
WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
GROUP BY source
"""
_CONTROL = """
SELECT count(*) FROM readings
WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
  AND control AND NOT awaiting_claim
"""


@dataclass(frozen=True)
class FetchedSeries:
    series: GlucoseSeries | None  # None: no readings of the chosen source in the period
    source: Source  # the source the series holds (asked for, or chosen)
    control_excluded: int  # control-solution tests in the period, never counted
    other_sources: dict[str, int]  # readings of the other sources in the period, not used


async def fetch_series(
    conn: AsyncConnection[tuple[object, ...]],
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    source: Source | None = None,
    with_meals: bool = False,
) -> FetchedSeries:
    """One source's readings in [start, end). In one unit: values as measured; in mixed
    units: mg/dL (classification stays in the measured unit where the caller needs it)."""
    params = {"patient": patient_id, "start": start, "end": end, "meals": with_meals}
    cur = await conn.execute(_SERIES, params)
    per_source = {str(row[0]): row for row in await cur.fetchall()}
    cur = await conn.execute(_CONTROL, params)
    control_row = await cur.fetchone()
    control = int(control_row[0]) if control_row is not None else 0  # type: ignore[call-overload]
    if source is None:
        source = Source.CGM if Source.CGM.value in per_source else Source.METER
    others = {k: int(v[1]) for k, v in per_source.items() if k != source.value}  # type: ignore[call-overload]
    row = per_source.get(source.value)
    if row is None:
        return FetchedSeries(None, source, control, others)
    _, n, mmol, epochs, values, mg_dl, meals = row
    assert isinstance(n, int) and isinstance(mmol, int)
    assert isinstance(epochs, bytes) and isinstance(values, bytes) and isinstance(mg_dl, bytes)
    times = np.frombuffer(epochs, dtype=">i8").astype("datetime64[s]")
    unit = Unit.MMOL_L if mmol == n else Unit.MG_DL
    column = values if unit is Unit.MMOL_L or mmol == 0 else mg_dl
    numbers = np.frombuffer(column, dtype=">f8").astype(np.float64)
    tags = None
    if with_meals and isinstance(meals, list):
        tags = [_meal(m) for m in meals]
    series = GlucoseSeries.build(times, numbers, unit, source, meals=tags)
    return FetchedSeries(series, source, control, others)


def _meal(tag: object) -> MealContext | None:
    try:
        return MealContext(tag) if isinstance(tag, str) else None
    except ValueError:
        return None
