"""Annotations: the patient's word on a reading, without destroying it.

A reading may be marked *not mine* (a family member used the meter), *control solution* (a
control test the meter did not flag), *wrong time* (with the instant it really happened), or
given a free *note*. The stored row never changes; the mark records who, when and why, and
`counted_readings` (migration 0013) honours the marks in force: an excluded reading counts
in no metric, page, alert or export, a corrected one counts on its corrected day. A mark is
undone, never deleted, so the history stays readable.

Who: the patient, or a clinician whose grant covers `care_plan` (the same people who set the
patient's alert thresholds). The care team with `readings` sees the marks. Every call goes
through the access gate, so the patient's access log shows who marked what.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from psycopg.rows import class_row
from pydantic import BaseModel, Field, model_validator

from api import paging
from api.access import CarePlanAccess, ReadingsAccess
from api.fields import Name, Note
from api.paging import Cursor, Limit, Page
from api.problems import PATIENT_RESPONSES, conflict, invalid, not_found, require_zoned
from api.state import pool_of

router = APIRouter(prefix="/api/v1", tags=["annotations"])

Kind = Literal["not_mine", "control_solution", "wrong_time", "note"]
ExcludingKind = Literal["not_mine", "control_solution"]
# A bulk exclusion reaches at most a year of one meter's readings: more is a mistake.
MAX_BULK = 20_000


class AnnotationIn(BaseModel):
    kind: Kind
    corrected_at: datetime | None = Field(
        default=None, description="wrong_time only: when the reading really happened"
    )
    note: Note | None = Field(default=None, description="why")

    @model_validator(mode="after")
    def _corrected_only_for_wrong_time(self) -> AnnotationIn:
        if (self.kind == "wrong_time") != (self.corrected_at is not None):
            raise ValueError("corrected_at is required for wrong_time, and only for it")
        if self.kind == "note" and not self.note:
            raise ValueError("a note needs its text")
        return self


class Annotation(BaseModel):
    id: uuid.UUID
    reading: uuid.UUID = Field(description="the reading's identity (readings list: `identity`)")
    reading_at: datetime = Field(description="the reading's instant as stored")
    kind: Kind
    corrected_at: datetime | None
    note: str | None
    bulk_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: uuid.UUID | None


class BulkExclusionIn(BaseModel):
    device: Name = Field(description="the meter's serial")
    start: datetime = Field(description="from this stored instant (inclusive)")
    end: datetime = Field(description="until this stored instant (exclusive)")
    kind: ExcludingKind = "not_mine"
    note: Note | None = None


class BulkExclusion(BaseModel):
    bulk_id: uuid.UUID
    marked: int = Field(description="readings newly marked")
    already_marked: int = Field(description="readings that already carried this mark")


_COLUMNS = """
id, identity AS reading, reading_at, kind, corrected_at, note, bulk_id, created_by,
created_at, undone_at, undone_by
"""

# The reading, by the instant its identity was first stored at (one chunk, not all).
_READING = """
SELECT r.measured_at FROM reading_identities i
JOIN readings r ON r.identity = i.identity AND r.measured_at = i.measured_at
WHERE i.identity = %(identity)s AND r.patient_id = %(patient)s AND NOT r.awaiting_claim
"""
_INSERT = f"""
INSERT INTO reading_annotations (patient_id, identity, reading_at, kind, corrected_at, note,
                                 created_by)
VALUES (%(patient)s, %(identity)s, %(reading_at)s, %(kind)s, %(corrected_at)s, %(note)s,
        %(user)s)
ON CONFLICT (identity, kind) WHERE undone_at IS NULL AND kind <> 'note' DO NOTHING
RETURNING {_COLUMNS}
"""
_LIST = f"""
SELECT {_COLUMNS} FROM reading_annotations
WHERE patient_id = %(patient)s
  AND (%(all)s OR undone_at IS NULL)
  AND (%(reading)s::uuid IS NULL OR identity = %(reading)s::uuid)
  AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) < (%(after_at)s, %(after_id)s))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""
_UNDO = f"""
UPDATE reading_annotations SET undone_at = now(), undone_by = %(user)s
WHERE id = %(id)s AND patient_id = %(patient)s AND undone_at IS NULL
RETURNING {_COLUMNS}
"""
_ONE = f"SELECT {_COLUMNS} FROM reading_annotations WHERE id = %(id)s AND patient_id = %(patient)s"
# A meter's readings in a stored period, and which of them already carry the mark.
_BULK = """
WITH chosen AS (
    SELECT r.identity, r.measured_at FROM readings r
    WHERE r.patient_id = %(patient)s AND r.device = %(device)s AND NOT r.awaiting_claim
      AND r.measured_at >= %(start)s AND r.measured_at < %(end)s
    LIMIT %(cap)s
), inserted AS (
    INSERT INTO reading_annotations (patient_id, identity, reading_at, kind, note, bulk_id,
                                     created_by)
    SELECT %(patient)s, identity, measured_at, %(kind)s, %(note)s, %(bulk)s, %(user)s
    FROM chosen
    ON CONFLICT (identity, kind) WHERE undone_at IS NULL AND kind <> 'note' DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM chosen)
"""

AnnotationId = Annotated[uuid.UUID, Path(description="the annotation's id")]


@router.post(
    "/patients/{patient_id}/readings/{reading}/annotations",
    response_model=Annotation,
    status_code=201,
    summary="Mark a reading: not mine, control solution, wrong time, or a note",
    responses=PATIENT_RESPONSES,
)
async def annotate_reading(
    request: Request,
    access: CarePlanAccess,
    reading: Annotated[uuid.UUID, Path(description="the reading's identity")],
    body: AnnotationIn,
) -> Annotation:
    if body.corrected_at is not None:
        require_zoned(body.corrected_at)
    params = {"patient": access.patient_id, "identity": reading}
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_READING, params)
        found = await cur.fetchone()
        if found is None:
            raise not_found("reading")
        marks = conn.cursor(row_factory=class_row(Annotation))
        await marks.execute(
            _INSERT,
            {
                **params,
                "reading_at": found[0],
                "kind": body.kind,
                "corrected_at": body.corrected_at,
                "note": body.note,
                "user": access.caller.id,
            },
        )
        created = await marks.fetchone()
    if created is None:
        raise conflict(f"this reading already carries a {body.kind} mark; undo it first")
    return created


@router.get(
    "/patients/{patient_id}/readings/annotations",
    response_model=Page[Annotation],
    summary="The marks on a patient's readings, newest first",
    responses=PATIENT_RESPONSES,
)
async def list_annotations(
    request: Request,
    access: ReadingsAccess,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
    reading: Annotated[uuid.UUID | None, Query(description="only this reading's")] = None,
    include_undone: Annotated[bool, Query(description="undone marks too")] = True,
) -> Page[Annotation]:
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(Annotation))
        await cur.execute(
            _LIST,
            {
                "patient": access.patient_id,
                "all": include_undone,
                "reading": reading,
                "after_at": after_at,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        return paging.page_of(await cur.fetchall(), limit)


@router.post(
    "/patients/{patient_id}/readings/annotations/{annotation_id}/undo",
    response_model=Annotation,
    summary="Undo a mark: the reading counts as it did before",
    responses=PATIENT_RESPONSES,
)
async def undo_annotation(
    request: Request, access: CarePlanAccess, annotation_id: AnnotationId
) -> Annotation:
    params = {"patient": access.patient_id, "id": annotation_id, "user": access.caller.id}
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(Annotation))
        await cur.execute(_UNDO, params)
        undone = await cur.fetchone()
        if undone is not None:
            return undone
        await cur.execute(_ONE, params)
        if await cur.fetchone() is None:
            raise not_found("annotation")
    raise conflict("this mark was already undone")


@router.post(
    "/patients/{patient_id}/readings/exclusions",
    response_model=BulkExclusion,
    status_code=201,
    summary="Exclude every reading of one meter between two instants",
    responses=PATIENT_RESPONSES,
)
async def exclude_readings(
    request: Request, access: CarePlanAccess, body: BulkExclusionIn
) -> BulkExclusion:
    require_zoned(body.start, body.end)
    if body.end <= body.start:
        raise invalid("end must come after start")
    bulk = uuid.uuid4()
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            _BULK,
            {
                "patient": access.patient_id,
                "device": body.device,
                "start": body.start,
                "end": body.end,
                "cap": MAX_BULK + 1,
                "kind": body.kind,
                "note": body.note,
                "bulk": bulk,
                "user": access.caller.id,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        marked, chosen = int(row[0]), int(row[1])
        if chosen > MAX_BULK:
            await conn.rollback()
            raise invalid(f"more than {MAX_BULK} readings in that period; choose a shorter one")
    return BulkExclusion(bulk_id=bulk, marked=marked, already_marked=chosen - marked)
