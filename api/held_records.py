"""Held records: what a patient's meters hold that could not become readings (a clock never
set, a date the meter cannot mean, NaN or NRes, a record whose length does not fit its
flags), kept with their raw bytes and reason so nothing a meter holds disappears.

Who sees them:

* the patient, and the care team with the `readings` scope (a held record is a reading that
  did not make it: the same data, the same grant; the page shows them beside the logbook);
* an admin, across patients (`GET /api/v1/held-records`), to look after the service (an
  admin sees no patient-scoped route); each patient whose records an admin's page shows gets
  a row in their access log.

The patient (only) resolves one whose only fault is its time: confirming the estimate the
bridge made from the record's neighbours, or giving the time. The reading is then stored
through the one intake (`core.intake.write`) like any other, and the held record says so.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api import audit_log as audit
from api import paging
from api.access import OwnerAccess, ReadingsAccess, request_id_of
from api.auth import Caller, Role, require_role
from api.paging import Cursor, Limit
from api.problems import (
    AUTH_RESPONSES,
    PATIENT_RESPONSES,
    Problem,
    conflict,
    invalid,
    not_found,
    require_zoned,
)
from api.state import client_address, pool_of, settings_of
from core.contract import MeterInfo
from core.intake import decode_items, reading_identity, write
from core.units import Unit
from core.vocabulary import HeldReason, RangeFlag, SourceKind

router = APIRouter(prefix="/api/v1", tags=["held records"])

# Where a resolution enters the intake, as dead letters and logs name it.
RESOLUTION_TOPIC = "api/held-records"
Resolution = Literal["confirmed", "corrected", "dismissed"]


class HeldRecordOut(BaseModel):
    id: int
    device: str = Field(description="the meter's serial")
    sequence_number: int | None
    reason: HeldReason
    detail: str = Field(description="what was wrong, as the bridge found it")
    raw_record: str = Field(description="the record as the meter sent it, hexadecimal")
    raw_context: str | None = Field(description="its context record, hexadecimal")
    meter_time: datetime | None = Field(description="the meter's clock fields when readable")
    estimated_at: datetime | None = Field(
        description="for a record whose time is unknown: the instant its neighbours' sequence "
        "numbers put it at, an estimate for the patient to confirm or correct"
    )
    received_at: datetime
    resolvable: bool = Field(
        description="only its time is missing: the patient may confirm the estimate or give it"
    )
    value: float | None = Field(description="the value, when the record has one, as measured")
    unit: Unit | None
    range_flag: RangeFlag | None = Field(description="HI / LO: the value is the meter's limit")
    shown_as: Literal["HI", "LO"] | None = Field(
        description="what the meter showed instead of a number"
    )
    resolution: Resolution | None
    resolved_at: datetime | None
    measured_at: datetime | None = Field(description="the instant of the reading it became")


class HeldRecordsPage(BaseModel):
    items: list[HeldRecordOut]
    next_cursor: str | None


class AdminHeldRecord(HeldRecordOut):
    patient_id: uuid.UUID | None


class AdminHeldRecordsPage(BaseModel):
    items: list[AdminHeldRecord]
    next_cursor: str | None


class CorrectedTime(BaseModel):
    measured_at: datetime = Field(description="when the reading was taken (with a zone)")


_COLUMNS = """
h.id, h.patient_id, h.device, h.sequence_number, h.reason, h.detail, h.raw_record,
h.raw_context, h.meter_time, h.estimated_at, h.received_at, h.reading, h.resolution,
h.resolved_at, i.measured_at
"""

# Newest first, keyset on the id; the reading a resolution stored found by its identity.
_LIST = f"""
SELECT {_COLUMNS}
FROM held_records h LEFT JOIN reading_identities i ON i.identity = h.reading_identity
WHERE (%(patient)s::uuid IS NULL OR h.patient_id = %(patient)s)
  AND (NOT %(open_only)s OR h.resolved_at IS NULL)
  AND (%(after)s::bigint IS NULL OR h.id < %(after)s)
ORDER BY h.id DESC
LIMIT %(limit)s
"""


def _out(row: dict[str, Any]) -> dict[str, Any]:
    reading = row["reading"]
    flag = RangeFlag(reading["range_flag"]) if reading and reading.get("range_flag") else None
    return {
        "id": row["id"],
        "patient_id": row["patient_id"],
        "device": row["device"],
        "sequence_number": row["sequence_number"],
        "reason": HeldReason(row["reason"]),
        "detail": row["detail"],
        "raw_record": bytes(row["raw_record"]).hex(),
        "raw_context": bytes(row["raw_context"]).hex() if row["raw_context"] else None,
        "meter_time": row["meter_time"],
        "estimated_at": row["estimated_at"],
        "received_at": row["received_at"],
        "resolvable": reading is not None and row["resolved_at"] is None,
        "value": reading["value"] if reading else None,
        "unit": Unit(reading["unit"]) if reading else None,
        "range_flag": flag,
        "shown_as": flag.shown_as if flag is not None else None,
        "resolution": row["resolution"],
        "resolved_at": row["resolved_at"],
        "measured_at": row["measured_at"],
    }


async def _page(
    request: Request, patient: uuid.UUID | None, open_only: bool, limit: int, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    after = paging.decode_int(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            _LIST,
            {"patient": patient, "open_only": open_only, "after": after, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = paging.encode(rows[-1]["id"], rows[-1]["id"]) if more and rows else None
    return [_out(r) for r in rows], next_cursor


OpenOnly = Annotated[bool, Query(description="only those not yet resolved")]


@router.get(
    "/patients/{patient_id}/held-records",
    response_model=HeldRecordsPage,
    summary="Records the patient's meters hold that could not become readings, newest first",
    description="The patient, and care-team members whose grant covers `readings`.",
    responses=PATIENT_RESPONSES,
)
async def list_held_records(
    request: Request,
    access: ReadingsAccess,
    open_only: OpenOnly = False,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> HeldRecordsPage:
    items, next_cursor = await _page(request, access.patient_id, open_only, limit, cursor)
    return HeldRecordsPage(
        items=[HeldRecordOut.model_validate(i) for i in items], next_cursor=next_cursor
    )


@router.get(
    "/held-records",
    response_model=AdminHeldRecordsPage,
    summary="Held records across patients, newest first (admins)",
    description="Each patient whose records the page shows gets a row in their access log.",
    responses={**AUTH_RESPONSES, 403: {"model": Problem, "description": "Not an admin"}},
)
async def list_all_held_records(
    request: Request,
    admin: Annotated[Caller, require_role(Role.ADMIN)],
    patient_id: Annotated[uuid.UUID | None, Query(description="one patient's only")] = None,
    open_only: OpenOnly = False,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AdminHeldRecordsPage:
    items, next_cursor = await _page(request, patient_id, open_only, limit, cursor)
    patients = {i["patient_id"] for i in items if i["patient_id"] is not None}
    async with pool_of(request).connection() as conn:
        for patient in sorted(patients):
            await audit.record(
                conn,
                audit.AuditEntry(
                    patient_id=patient,
                    action="list_all_held_records",
                    method=request.method,
                    path=request.url.path,
                    request_id=request_id_of(request),
                    client_address=client_address(request),
                    actor_user_id=admin.id,
                    actor_role=admin.role.value,
                ),
            )
    return AdminHeldRecordsPage(
        items=[AdminHeldRecord.model_validate(i) for i in items], next_cursor=next_cursor
    )


_FOR_RESOLUTION = f"""
SELECT {_COLUMNS}, h.sender, p.timezone
FROM held_records h
JOIN patients p ON p.id = h.patient_id
LEFT JOIN reading_identities i ON i.identity = h.reading_identity
WHERE h.id = %(id)s AND h.patient_id = %(patient)s
FOR UPDATE OF h
"""

_RESOLVE = """
UPDATE held_records
SET resolved_at = now(), resolution = %(resolution)s, resolved_by = %(user)s,
    reading_identity = %(identity)s
WHERE id = %(id)s
"""


def _resolve(
    database_url: str,
    patient: uuid.UUID,
    held_id: int,
    user: uuid.UUID,
    given: datetime | None,
) -> None:
    """Store the reading a held record is, at the estimate (`given` None) or the given time,
    and mark the record resolved: one transaction, the record locked against a second try."""
    with psycopg.connect(database_url) as conn, conn.transaction():
        row = (
            conn.cursor(row_factory=dict_row)
            .execute(_FOR_RESOLUTION, {"id": held_id, "patient": patient})
            .fetchone()
        )
        if row is None:
            raise not_found("held record")
        if row["resolved_at"] is not None:
            raise conflict(f"held record {held_id} was {row['resolution']} already")
        proposal = row["reading"]
        if proposal is None:
            raise invalid("this record has no reading to store: only a time can be given")
        at = given or row["estimated_at"]
        if at is None:
            raise invalid("there is no estimate to confirm: give the time (correct)")
        # What the meter would have shown, had its clock been right: the patient's wall clock.
        meter_time = at.astimezone(ZoneInfo(row["timezone"])).replace(tzinfo=None)
        item = {**proposal, "measured_at": at.isoformat(), "meter_time": meter_time.isoformat()}
        device = row["device"]
        decoded = decode_items(
            RESOLUTION_TOPIC,
            json.dumps(item).encode(),
            row["sender"],
            uuid.uuid4(),
            MeterInfo(serial=device),
            [item],
            patient_id=patient,
        )
        if decoded.rejected:
            raise invalid(decoded.rejected[0].reason)
        write(conn, [decoded], [])
        [reading] = decoded.readings
        identity = reading_identity(
            patient,
            device,
            SourceKind(reading.source_kind),
            reading.sequence_number,
            reading.meter_time,
            reading.value,
        )
        conn.execute(
            _RESOLVE,
            {
                "id": held_id,
                "user": user,
                "identity": identity,
                "resolution": "corrected" if given is not None else "confirmed",
            },
        )


async def _resolved(
    request: Request, patient: uuid.UUID, held_id: int, user: uuid.UUID, given: datetime | None
) -> HeldRecordOut:
    await asyncio.to_thread(
        _resolve, settings_of(request).database_url, patient, held_id, user, given
    )
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            f"SELECT {_COLUMNS} FROM held_records h LEFT JOIN reading_identities i"
            " ON i.identity = h.reading_identity WHERE h.id = %s",
            (held_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return HeldRecordOut.model_validate(_out(row))


RESOLUTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PATIENT_RESPONSES,
    409: {"model": Problem, "description": "The record was resolved already"},
    422: {"model": Problem, "description": "Nothing to confirm, or a time the reading refuses"},
}


@router.post(
    "/patients/{patient_id}/held-records/{held_id}/confirm",
    response_model=HeldRecordOut,
    summary="Confirm the estimated time: the record becomes a reading (the patient only)",
    responses=RESOLUTION_RESPONSES,
)
async def confirm_held_record(request: Request, access: OwnerAccess, held_id: int) -> HeldRecordOut:
    return await _resolved(request, access.patient_id, held_id, access.caller.id, None)


@router.post(
    "/patients/{patient_id}/held-records/{held_id}/correct",
    response_model=HeldRecordOut,
    summary="Give the record's time: it becomes a reading at that time (the patient only)",
    responses=RESOLUTION_RESPONSES,
)
async def correct_held_record(
    request: Request, access: OwnerAccess, held_id: int, body: CorrectedTime
) -> HeldRecordOut:
    require_zoned(body.measured_at)
    return await _resolved(request, access.patient_id, held_id, access.caller.id, body.measured_at)
