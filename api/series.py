"""Fetching one patient's readings over a period as a `GlucoseSeries`.

SQL only fetches: one aggregate row of arrays per period (a 90-day CGM period is 26,000
readings; arrays cross the wire as one value each and land in numpy without a Python object
per reading). Control-solution readings are counted, never returned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from psycopg import AsyncConnection

from core.metrics import GlucoseSeries, MealContext, Source
from core.units import Unit

CONTROL_SOLUTION = "control_solution"
# GLS sample type 9: a continuous sensor's reading.
INTERSTITIAL_FLUID = "interstitial_fluid"

# float8send/int8send give big-endian binary; string_agg joins them into one bytea that
# numpy reads as an array directly. Meals are only fetched where a caller needs them.
_SERIES = """
SELECT count(*) FILTER (WHERE NOT control),
       count(*) FILTER (WHERE control),
       count(*) FILTER (WHERE NOT control AND unit = 'mmol/L'),
       count(*) FILTER (WHERE NOT control AND sample_type = 'interstitial_fluid'),
       coalesce(string_agg(int8send(epoch), ''::bytea) FILTER (WHERE NOT control), ''::bytea),
       coalesce(string_agg(float8send(value), ''::bytea) FILTER (WHERE NOT control), ''::bytea),
       coalesce(string_agg(float8send(mg_dl), ''::bytea) FILTER (WHERE NOT control), ''::bytea),
       CASE WHEN %(meals)s
            THEN array_agg(meal) FILTER (WHERE NOT control) END
FROM (
    SELECT extract(epoch FROM measured_at)::int8 AS epoch, value, mg_dl, unit, sample_type,
           meal, sample_type IS NOT DISTINCT FROM 'control_solution' AS control
    FROM readings
    WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
) r
"""


@dataclass(frozen=True)
class FetchedSeries:
    series: GlucoseSeries | None  # None: no (non-control) readings in the period
    control_excluded: int


async def fetch_series(
    conn: AsyncConnection[tuple[object, ...]],
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    source: Source | None = None,
    with_meals: bool = False,
) -> FetchedSeries:
    """Readings in [start, end). All in one unit: values as measured; mixed units: mg/dL.

    The source, when not given, is CGM if most readings are interstitial fluid (GLS sample
    type 9), a meter otherwise.
    """
    cur = await conn.execute(
        _SERIES, {"patient": patient_id, "start": start, "end": end, "meals": with_meals}
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns a row
    n, control, mmol, isf, epochs, values, mg_dl, meals = row
    assert isinstance(n, int) and isinstance(control, int)
    assert isinstance(mmol, int) and isinstance(isf, int)
    assert isinstance(epochs, bytes) and isinstance(values, bytes) and isinstance(mg_dl, bytes)
    if n == 0:
        return FetchedSeries(None, control)
    times = np.frombuffer(epochs, dtype=">i8").astype("datetime64[s]")
    unit = Unit.MMOL_L if mmol == n else Unit.MG_DL
    column = values if unit is Unit.MMOL_L or mmol == 0 else mg_dl
    numbers = np.frombuffer(column, dtype=">f8").astype(np.float64)
    if source is None:
        source = Source.CGM if 2 * isf > n else Source.METER
    tags = None
    if with_meals and isinstance(meals, list):
        tags = [_meal(m) for m in meals]
    series = GlucoseSeries.build(times, numbers, unit, source, meals=tags)
    return FetchedSeries(series, control)


def _meal(tag: object) -> MealContext | None:
    try:
        return MealContext(tag) if isinstance(tag, str) else None
    except ValueError:
        return None
