"""A patient's readings to take elsewhere (CSV, FHIR R4, Open mHealth), and a de-identified
research export of the patients who opted in."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from api import paging
from api.access import ExportsAccess
from api.auth import Caller, Role, require_role
from api.paging import Cursor
from api.problems import (
    AUTH_RESPONSES,
    PATIENT_RESPONSES,
    Problem,
    ProblemError,
    require_zoned,
)
from api.state import pool_of
from api.users import saved_unit
from core.fhir import ExportReading, bundle, omh_data_point
from core.units import Unit, from_mg_dl
from core.vocabulary import RangeFlag, SourceKind

router = APIRouter(prefix="/api/v1", tags=["exports"])

# Ten years of eight fingersticks a day, or a year of 5-minute CGM: one response, no paging.
MAX_EXPORT_ROWS = 150_000
# Research pages are per patient: a page holds this many patients' readings.
RESEARCH_PAGE_PATIENTS = 20
FHIR_JSON = "application/fhir+json"
CSV_COLUMNS = (
    "measured_at",
    "value",
    "unit",
    "value_as_measured",
    "unit_as_measured",
    "device",
    "source",
    "sequence_number",
    "meter_time",
    "sample_type",
    "sample_location",
    "meal",
    "carbohydrate_g",
    "range_flag",
    # What the meter showed instead of a number for a result beyond its range ("HI" / "LO");
    # `value` is then the meter's limit.
    "shown_as",
)

Start = Annotated[datetime | None, Query(description="from this instant (inclusive)")]
End = Annotated[datetime | None, Query(description="until this instant (exclusive)")]

_ROWS = """
SELECT measured_at, value, unit, mg_dl, device, source, sequence_number, meter_time,
       sample_type, sample_location, meal, carbohydrate_g, identity, range_flag
FROM counted_readings
WHERE patient_id = %(patient)s
  AND measured_at >= coalesce(%(start)s::timestamptz, '-infinity')
  AND measured_at < coalesce(%(end)s::timestamptz, 'infinity')
ORDER BY measured_at, identity
LIMIT %(limit)s
"""


def _reading(row: tuple[Any, ...]) -> ExportReading:
    return ExportReading(
        measured_at=row[0],
        value=row[1],
        unit=Unit(row[2]),
        mg_dl=row[3],
        device=row[4],
        source=SourceKind(row[5]),
        sequence_number=row[6],
        meter_time=row[7],
        sample_type=row[8],
        sample_location=row[9],
        meal=row[10],
        carbohydrate_g=row[11],
        identity=row[12],
        range_flag=RangeFlag(row[13]) if row[13] is not None else None,
    )


async def counted_rows(
    conn: AsyncConnection[Any],
    patient_id: uuid.UUID,
    start: datetime | None,
    end: datetime | None,
) -> list[ExportReading]:
    """The patient's counted readings in the period, oldest first (exports and archives)."""
    require_zoned(start, end)
    cur = await conn.execute(
        _ROWS, {"patient": patient_id, "start": start, "end": end, "limit": MAX_EXPORT_ROWS + 1}
    )
    rows = [_reading(r) for r in await cur.fetchall()]
    if len(rows) > MAX_EXPORT_ROWS:
        raise ProblemError(
            422,
            "export-too-large",
            "Export too large",
            f"more than {MAX_EXPORT_ROWS} readings: narrow start and end",
        )
    return rows


@router.get(
    "/patients/{patient_id}/exports/readings.csv",
    response_class=Response,
    summary="Readings as CSV, oldest first",
    responses={
        **PATIENT_RESPONSES,
        200: {
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": ",".join(CSV_COLUMNS)
                    + "\n2026-11-01T07:30:00+00:00,112.0,mg/dL,112.0,mg/dL,SN-1,meter,1,"
                    "2026-11-01T07:30:00,capillary_plasma,finger,before_meal,,,\n"
                    "2026-11-01T12:10:00+00:00,600.0,mg/dL,600.0,mg/dL,SN-1,meter,2,"
                    "2026-11-01T12:10:00,capillary_plasma,finger,,,above_range,HI\n",
                }
            },
            "description": "one row per reading",
        },
    },
)
async def export_csv(
    request: Request,
    access: ExportsAccess,
    start: Start = None,
    end: End = None,
    unit: Annotated[
        Unit | None, Query(description="unit of `value`; default: the caller's saved unit")
    ] = None,
) -> Response:
    async with pool_of(request).connection() as conn:
        rows = await counted_rows(conn, access.patient_id, start, end)
        unit = unit or await saved_unit(conn, access.caller.id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(
            (
                r.measured_at.isoformat(),
                round(from_mg_dl(r.mg_dl, unit), 2),
                unit.value,
                r.value,
                r.unit.value,
                r.device,
                r.source.value,
                "" if r.sequence_number is None else r.sequence_number,
                r.meter_time.isoformat(),
                r.sample_type or "",
                r.sample_location or "",
                r.meal or "",
                "" if r.carbohydrate_g is None else r.carbohydrate_g,
                r.range_flag.value if r.range_flag is not None else "",
                r.range_flag.shown_as if r.range_flag is not None else "",
            )
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{access.patient_id}.csv"'},
    )


@router.get(
    "/patients/{patient_id}/exports/fhir",
    response_class=JSONResponse,
    summary="Readings as a FHIR R4 Bundle of Observations (LOINC 41653-7 / 99504-3)",
    responses={
        **PATIENT_RESPONSES,
        200: {
            "content": {
                FHIR_JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["resourceType", "type", "entry"],
                        "properties": {
                            "resourceType": {"const": "Bundle"},
                            "type": {"const": "collection"},
                            "total": {"type": "integer"},
                            "entry": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                }
            },
            "description": "a collection Bundle: Patient, Devices, Observations",
        },
    },
)
async def export_fhir(
    request: Request, access: ExportsAccess, start: Start = None, end: End = None
) -> JSONResponse:
    async with pool_of(request).connection() as conn:
        rows = await counted_rows(conn, access.patient_id, start, end)
        cur = await conn.execute(
            "SELECT display_name FROM patients WHERE id = %s", (access.patient_id,)
        )
        name = await cur.fetchone()
    assert name is not None
    document = bundle(access.patient_id, name[0], rows, datetime.now(UTC))
    return JSONResponse(document, media_type=FHIR_JSON)


class OmhPage(BaseModel):
    """Open mHealth `omh:blood-glucose:4.0` data points, each with its header."""

    items: list[dict[str, Any]]


@router.get(
    "/patients/{patient_id}/exports/openmhealth",
    response_model=OmhPage,
    summary="Readings as Open mHealth blood-glucose 4.0 data points",
    responses=PATIENT_RESPONSES,
)
async def export_openmhealth(
    request: Request,
    access: ExportsAccess,
    start: Start = None,
    end: End = None,
    unit: Annotated[
        Unit | None, Query(description="unit of blood_glucose; default: the caller's saved unit")
    ] = None,
) -> OmhPage:
    async with pool_of(request).connection() as conn:
        rows = await counted_rows(conn, access.patient_id, start, end)
        chosen = unit or await saved_unit(conn, access.caller.id)
    now = datetime.now(UTC)
    return OmhPage(items=[omh_data_point(r, chosen, now) for r in rows])


# -- research ---------------------------------------------------------------------------------


class ResearchReading(BaseModel):
    local_time: datetime = Field(
        description="the patient's wall-clock time, moved by the patient's whole-day shift"
    )
    mg_dl: float
    source: str = Field(description="meter or cgm")
    meal: str | None
    carbohydrate_g: float | None


class ResearchPatient(BaseModel):
    pseudonym: uuid.UUID
    readings: list[ResearchReading]


class ResearchPage(BaseModel):
    items: list[ResearchPatient]
    next_cursor: str | None


_OPTED_IN = """
SELECT id, research_pseudonym, research_shift_days, timezone FROM patients
WHERE research_opt_in AND (%(after)s::uuid IS NULL OR research_pseudonym > %(after)s::uuid)
ORDER BY research_pseudonym
LIMIT %(limit)s
"""


@router.get(
    "/research/export",
    response_model=ResearchPage,
    summary="De-identified readings of the patients who opted in (admins)",
    description="No names, e-mails, ids or serials; each patient is a pseudonym, and every "
    "date is moved by a per-patient number of whole days, so times of day stay true.",
    responses={**AUTH_RESPONSES, 403: {"model": Problem, "description": "Not an admin"}},
)
async def research_export(
    request: Request,
    _admin: Annotated[Caller, require_role(Role.ADMIN)],
    cursor: Cursor = None,
) -> ResearchPage:
    after = paging.decode_key(cursor)
    items: list[ResearchPatient] = []
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_OPTED_IN, {"after": after, "limit": RESEARCH_PAGE_PATIENTS + 1})
        patients = await cur.fetchall()
        for patient_id, pseudonym, shift_days, tz in patients[:RESEARCH_PAGE_PATIENTS]:
            zone = ZoneInfo(tz)
            shift = timedelta(days=shift_days)
            rows = await counted_rows(conn, patient_id, None, None)
            items.append(
                ResearchPatient(
                    pseudonym=pseudonym,
                    readings=[
                        ResearchReading(
                            local_time=r.measured_at.astimezone(zone).replace(tzinfo=None) + shift,
                            mg_dl=round(r.mg_dl, 1),
                            source="cgm" if r.is_cgm else "meter",
                            meal=r.meal,
                            carbohydrate_g=r.carbohydrate_g,
                        )
                        for r in rows
                    ],
                )
            )
    more = len(patients) > RESEARCH_PAGE_PATIENTS
    return ResearchPage(
        items=items, next_cursor=paging.encode(0, items[-1].pseudonym) if more else None
    )
