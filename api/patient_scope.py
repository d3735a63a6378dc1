"""The one place a patient-scoped route of the analytics and alerts routers resolves its
patient. Access control (a grant check and an audit row) is added here, once, as a
dependency of `patient_in_scope`, and then applies to every route that uses it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from psycopg_pool import AsyncConnectionPool

from api.problems import not_found
from api.state import read_pool_of
from core.days import ZoneHistory, ZonePeriod

# '-infinity' (the zone a patient started with) cannot become a Python datetime.
_ZONES = """
SELECT CASE WHEN effective_from = '-infinity' THEN NULL ELSE effective_from END, timezone
FROM patient_timezones WHERE patient_id = %s ORDER BY effective_from
"""
_ALWAYS = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ScopedPatient:
    id: uuid.UUID
    timezone: str  # current zone
    zones: ZoneHistory  # every zone the patient lived in, with since when


def pool_of(request: Request) -> AsyncConnectionPool:
    """The pool of the analytics routes (trends, AGP, days): reads that may be a few seconds
    stale, so a standby's when one is configured (api.state.read_pool_of). The access gate
    before them writes its audit row on the primary."""
    return read_pool_of(request)


async def patient_in_scope(
    request: Request, patient_id: Annotated[uuid.UUID, Path(description="the patient's id")]
) -> ScopedPatient:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute("SELECT timezone FROM patients WHERE id = %s", (patient_id,))
        row = await cur.fetchone()
        if row is None:
            raise not_found("patient")
        cur = await conn.execute(_ZONES, (patient_id,))
        periods = [ZonePeriod(at or _ALWAYS, zone) for at, zone in await cur.fetchall()]
    current = str(row[0])
    zones = ZoneHistory(periods or [ZonePeriod(_ALWAYS, current)])
    return ScopedPatient(patient_id, current, zones)


Patient = Annotated[ScopedPatient, Depends(patient_in_scope)]
