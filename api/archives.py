"""Take it all: the patient asks for an archive of their whole record, watches it being
built, and downloads it while it is valid (a day by default). The patient only: an archive
holds the access log and the grants, which are theirs, not their care team's."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api.access import OwnerAccess
from api.problems import PATIENT_RESPONSES, ProblemError, conflict, not_found
from api.state import pool_of

router = APIRouter(prefix="/api/v1", tags=["record"])

Status = Literal["queued", "building", "ready", "failed", "expired"]


class Archive(BaseModel):
    id: uuid.UUID
    status: Status
    files_done: int = Field(description="files written so far")
    files_total: int | None = Field(description="files the archive will hold, once known")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="the download works until then")
    error: str | None
    download: str | None = Field(description="where to download it, once ready")


_COLUMNS = "id, status, files_done, files_total, created_at, finished_at, expires_at, error"
_CREATE = f"""
INSERT INTO record_archives (patient_id, requested_by) VALUES (%(patient)s, %(user)s)
RETURNING {_COLUMNS}, NULL AS download
"""
_ONE = f"""
SELECT {_COLUMNS}, NULL AS download FROM record_archives
WHERE id = %(id)s AND patient_id = %(patient)s
"""
_CONTENT = """
SELECT status, content, expires_at < now() FROM record_archives
WHERE id = %(id)s AND patient_id = %(patient)s
"""

ArchiveId = Annotated[uuid.UUID, Path(description="the archive's id")]


def _with_link(archive: Archive, patient: uuid.UUID) -> Archive:
    if archive.status == "ready":
        archive.download = f"/api/v1/patients/{patient}/archive/{archive.id}/file"
    return archive


@router.post(
    "/patients/{patient_id}/archive",
    response_model=Archive,
    status_code=202,
    summary="Ask for an archive of one's whole record (built in the background)",
    responses=PATIENT_RESPONSES,
)
async def request_archive(request: Request, access: OwnerAccess) -> Archive:
    params = {"patient": access.patient_id, "user": access.caller.id}
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(Archive))
        await cur.execute(_CREATE, params)
        created = await cur.fetchone()
    assert created is not None
    request.app.state.record_jobs.wake()
    return created


@router.get(
    "/patients/{patient_id}/archive/{archive_id}",
    response_model=Archive,
    summary="How far an archive is, and its download link once ready",
    responses=PATIENT_RESPONSES,
)
async def get_archive(request: Request, access: OwnerAccess, archive_id: ArchiveId) -> Archive:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(Archive))
        await cur.execute(_ONE, {"patient": access.patient_id, "id": archive_id})
        found = await cur.fetchone()
    if found is None:
        raise not_found("archive")
    return _with_link(found, access.patient_id)


@router.get(
    "/patients/{patient_id}/archive/{archive_id}/file",
    response_class=Response,
    summary="Download a ready archive (a zip with a README describing each file)",
    responses={
        **PATIENT_RESPONSES,
        200: {"content": {"application/zip": {}}, "description": "the archive"},
    },
)
async def download_archive(
    request: Request, access: OwnerAccess, archive_id: ArchiveId
) -> Response:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_CONTENT, {"patient": access.patient_id, "id": archive_id})
        found = await cur.fetchone()
    if found is None:
        raise not_found("archive")
    status, content, expired = found
    if status == "expired" or (status == "ready" and expired):
        raise ProblemError(410, "archive-expired", "Archive expired", "ask for a new archive")
    if status != "ready":
        raise conflict(f"the archive is {status}, not ready")
    return Response(
        bytes(content),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="glucobridge-record-{archive_id}.zip"'
        },
    )
