"""Readings of one patient, newest first, paged."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api.access import ReadingsAccess
from api.problems import PATIENT_RESPONSES, ProblemError, require_zoned
from api.state import read_pool_of
from core.units import Unit, from_mg_dl
from core.vocabulary import RangeFlag, SourceKind

router = APIRouter(prefix="/api/v1")

# A page big enough for a 14-day fingerstick logbook, small enough for one response.
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class ReadingOut(BaseModel):
    measured_at: datetime
    value: float
    unit: Unit
    value_as_measured: float
    unit_as_measured: Unit
    device: str = Field(description="the meter's serial, or the uploading or imported device")
    source: SourceKind
    sequence_number: int | None
    meter_time: datetime
    time_offset_minutes: int | None
    control: bool = Field(description="a control-solution test: shown, never counted")
    range_flag: RangeFlag | None = Field(description="HI / LO: the value is the meter's limit")
    shown_as: Literal["HI", "LO"] | None = Field(
        default=None, description="what the meter showed instead of a number"
    )
    conflict: bool = Field(description="another value was sent for the same instant")
    sample_type: str | None
    sample_location: str | None
    sensor_status: list[str]
    meal: str | None
    carbohydrate_g: float | None
    identity: uuid.UUID = Field(description="the reading's id, to annotate it")
    excluded: bool = Field(description="marked not mine or control solution: counted nowhere")
    corrected_at: datetime | None = Field(
        description="marked wrong time: the instant it counts at (measured_at stays as stored)"
    )


class ReadingsPage(BaseModel):
    patient_id: uuid.UUID
    items: list[ReadingOut]
    next_cursor: str | None


class _Row(BaseModel):
    measured_at: datetime
    value: float
    unit: Unit
    mg_dl: float
    device: str
    source: SourceKind
    sequence_number: int | None
    meter_time: datetime
    time_offset_minutes: int | None
    control: bool
    range_flag: RangeFlag | None
    conflict: bool
    identity: uuid.UUID
    sample_type: str | None
    sample_location: str | None
    sensor_status: list[str]
    meal: str | None
    carbohydrate_g: float | None
    excluded: bool
    corrected_at: datetime | None


def _encode_cursor(row: _Row) -> str:
    key = [row.measured_at.isoformat(), str(row.identity)]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, identity = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), uuid.UUID(str(identity))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ProblemError(
            400, "invalid-cursor", "Invalid cursor", "the cursor is not one this API returned"
        ) from exc


# The patient's logbook: every reading of theirs, control-solution tests included (flagged,
# as the meter shows them); readings of a meter they have not claimed wait in its listing.
_READINGS = """
SELECT measured_at, value, unit, mg_dl, device, source, sequence_number, meter_time,
       time_offset_minutes, control, range_flag, conflict, identity, sample_type,
       sample_location, sensor_status, meal, carbohydrate_g,
       coalesce(m.excluded, false) AS excluded, m.corrected_at
FROM readings
LEFT JOIN reading_marks m USING (patient_id, identity)
WHERE patient_id = %(patient)s AND NOT awaiting_claim
  AND (%(source)s::text IS NULL OR source = %(source)s::text)
  AND measured_at >= coalesce(%(start)s::timestamptz, '-infinity')
  AND measured_at < coalesce(%(end)s::timestamptz, 'infinity')
  AND (%(after_at)s::timestamptz IS NULL
       OR (measured_at, identity) < (%(after_at)s, %(after_identity)s::uuid))
ORDER BY measured_at DESC, identity DESC
LIMIT %(limit)s
"""


@router.get(
    "/patients/{patient_id}/readings",
    response_model=ReadingsPage,
    summary="A patient's readings, newest first",
    responses=PATIENT_RESPONSES,
)
async def list_readings(
    request: Request,
    access: ReadingsAccess,
    start: Annotated[datetime | None, Query(description="from this instant (inclusive)")] = None,
    end: Annotated[datetime | None, Query(description="until this instant (exclusive)")] = None,
    unit: Annotated[Unit, Query(description="unit to show values in")] = Unit.MG_DL,
    source: Annotated[SourceKind | None, Query(description="only this source")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> ReadingsPage:
    require_zoned(start, end)
    after = _decode_cursor(cursor) if cursor else (None, None)
    patient_id = access.patient_id
    async with read_pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(_Row))
        await cur.execute(
            _READINGS,
            {
                "patient": patient_id,
                "start": start,
                "end": end,
                "limit": limit + 1,
                "after_at": after[0],
                "after_identity": after[1],
                "source": source,
            },
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        ReadingOut(
            measured_at=r.measured_at,
            value=round(from_mg_dl(r.mg_dl, unit), 2),
            unit=unit,
            value_as_measured=r.value,
            unit_as_measured=r.unit,
            device=r.device,
            source=r.source,
            sequence_number=r.sequence_number,
            meter_time=r.meter_time,
            time_offset_minutes=r.time_offset_minutes,
            control=r.control,
            range_flag=r.range_flag,
            shown_as=r.range_flag.shown_as if r.range_flag is not None else None,
            conflict=r.conflict,
            sample_type=r.sample_type,
            sample_location=r.sample_location,
            sensor_status=r.sensor_status,
            meal=r.meal,
            carbohydrate_g=r.carbohydrate_g,
            identity=r.identity,
            excluded=r.excluded,
            corrected_at=r.corrected_at,
        )
        for r in rows
    ]
    return ReadingsPage(
        patient_id=patient_id,
        items=items,
        next_cursor=_encode_cursor(rows[-1]) if more and rows else None,
    )
