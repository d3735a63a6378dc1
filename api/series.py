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
from core.vocabulary import SourceKind

# Per source in one pass (the partial index readings_counted_series serves it); values as
# big-endian binary: float8send/int8send joined by string_agg into one bytea per column,
# which numpy reads directly. The aggregates take the rows as they come (an ORDER BY in each
# would sort the period once per column, most of the query's time); one aggregation node
# feeds every aggregate the same rows in the same order, so the columns stay aligned, and
# numpy sorts them by the instant to the microsecond (a timestamptz as PostgreSQL sends it:
# microseconds since 2000-01-01 UTC), then floors it to the second (as `GlucoseSeries`
# keeps them), so a reading inside [start, end) stays inside the period.
# Values stay as measured, with one byte per reading saying its unit (1 = mmol/L), so every
# reading is classified in the unit it was measured in. Meals are only fetched for
# fingersticks, and only where a caller needs them.
_SERIES = """
SELECT source,
       count(*),
       string_agg(timestamptz_send(measured_at), ''::bytea),
       string_agg(float8send(value), ''::bytea),
       string_agg(CASE WHEN unit = 'mmol/L' THEN '\\x01'::bytea ELSE '\\x00'::bytea END,
                  ''::bytea),
       array_agg(meal) FILTER (WHERE %(meals)s AND source = 'meter')
FROM counted_readings
WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
GROUP BY source
"""
# Control tests the meter flagged (their own partial index, migration 0015), and those the
# patient marked as such (migration 0013), found from the marks: one count each, neither
# reads the period's readings.
_CONTROL = """
SELECT (SELECT count(*) FROM readings
        WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
          AND control AND NOT awaiting_claim)
     + (SELECT count(*) FROM reading_annotations a
        JOIN readings r ON r.identity = a.identity AND r.measured_at = a.reading_at
        WHERE a.patient_id = %(patient)s AND r.patient_id = %(patient)s
          AND a.reading_at >= %(start)s AND a.reading_at < %(end)s
          AND a.kind = 'control_solution' AND a.undone_at IS NULL
          AND NOT r.control AND NOT r.awaiting_claim)
"""


# PostgreSQL's binary timestamps count from 2000-01-01 UTC: this many seconds after 1970.
_PG_EPOCH_S = 946_684_800


@dataclass(frozen=True)
class FetchedSeries:
    series: GlucoseSeries | None  # None: no readings of the chosen source in the period
    source: Source  # the source the series holds (asked for, or chosen)
    control_excluded: int  # control-solution tests in the period, never counted
    other_sources: dict[SourceKind, int]  # readings of the other sources in the period, unused


async def fetch_series(
    conn: AsyncConnection[tuple[object, ...]],
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    *,
    source: Source | None = None,
    with_meals: bool = False,
) -> FetchedSeries:
    """One source's readings in [start, end), values as measured with their units."""
    params = {"patient": patient_id, "start": start, "end": end, "meals": with_meals}
    cur = await conn.execute(_SERIES, params)
    per_source = {SourceKind(str(row[0])): row for row in await cur.fetchall()}
    cur = await conn.execute(_CONTROL, params)
    control_row = await cur.fetchone()
    control = int(control_row[0]) if control_row is not None else 0  # type: ignore[call-overload]
    if source is None:
        source = Source.CGM if Source.CGM in per_source else Source.METER
    others = {k: int(v[1]) for k, v in per_source.items() if k != source}  # type: ignore[call-overload]
    row = per_source.get(source)
    if row is None:
        return FetchedSeries(None, source, control, others)
    _, _, epochs, values, units, meals = row
    return FetchedSeries(series_of(source, epochs, values, units, meals), source, control, others)


def series_of(
    source: Source, epochs: object, values: object, units: object, meals: object = None
) -> GlucoseSeries:
    """A series from the binary columns `_SERIES` aggregates (any query may reuse them)."""
    assert isinstance(epochs, bytes) and isinstance(values, bytes) and isinstance(units, bytes)
    micros = np.frombuffer(epochs, dtype=">i8").astype(np.int64)
    order = np.argsort(micros, kind="stable")
    times = (micros[order] // 1_000_000 + _PG_EPOCH_S).astype("datetime64[s]")
    numbers = np.frombuffer(values, dtype=">f8").astype(np.float64)[order]
    mmol = np.frombuffer(units, dtype=np.uint8).astype(np.bool_)[order]
    tags = [_meal(meals[i]) for i in order.tolist()] if isinstance(meals, list) else None
    return GlucoseSeries.build(times, numbers, mmol, source, meals=tags)


def _meal(tag: object) -> MealContext | None:
    try:
        return MealContext(tag) if isinstance(tag, str) else None
    except ValueError:
        return None
