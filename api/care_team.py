"""Consent: the patient grants a person or a clinic some scopes until a date, and revokes;
a clinician asks, and the patient approves or declines.

Grants only ever change state (requested → active | declined, active → revoked); an expired
grant simply stops counting. `api.access` reads them at the time of every request.

A clinic grant reaches the clinic's clinicians and nutritionists who are members when it
comes into force (`reach = "members"`, the default); members who join later reach the patient
only through a grant that says "everyone in the clinic, now and later" (`reach = "clinic"`).
The patient sees on each grant whom it reaches today (`reaches`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from psycopg.rows import class_row
from pydantic import BaseModel, Field, model_validator

from api import paging
from api.access import CARE_PLAN_ROLES, SCOPES, OwnerAccess, Scope
from api.auth import GRANTEE_ROLES, CurrentUser, Role
from api.fields import Note
from api.paging import Cursor, Limit, Page
from api.problems import (
    AUTH_RESPONSES,
    PATIENT_RESPONSES,
    Problem,
    ProblemError,
    forbidden,
    invalid,
)
from api.state import pool_of

router = APIRouter(prefix="/api/v1", tags=["care team"])

Status = Literal["requested", "active", "declined", "revoked"]
Scopes = Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))]
Reach = Literal["members", "clinic"]
_REACH_DESCRIPTION = (
    "a clinic grant: 'members', the clinicians and nutritionists in the clinic when it comes"
    " into force; 'clinic', everyone in the clinic, now and later"
)


def _future(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise invalid("expires_at must carry a time zone, e.g. 2027-01-01T00:00Z")
    if value <= datetime.now(UTC):
        raise invalid("expires_at must be in the future")
    return value


class GrantIn(BaseModel):
    grantee_user_id: uuid.UUID | None = None
    grantee_organisation_id: uuid.UUID | None = None
    scopes: Scopes
    expires_at: datetime | None = Field(default=None, description="null: until revoked")
    reach: Reach = Field(default="members", description=_REACH_DESCRIPTION)

    @model_validator(mode="after")
    def _one_grantee(self) -> GrantIn:
        if (self.grantee_user_id is None) == (self.grantee_organisation_id is None):
            raise ValueError("name exactly one of grantee_user_id and grantee_organisation_id")
        return self

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "grantee_user_id": "0b7e4c1a-8f0e-4f7e-9d51-2a2c1b7f6a10",
                    "scopes": ["readings", "trends"],
                    "expires_at": "2027-06-30T00:00:00Z",
                }
            ]
        }
    }


class Approval(BaseModel):
    expires_at: datetime | None = Field(
        default=None, description="when the access ends; null keeps what was asked"
    )
    reach: Reach = Field(default="members", description=_REACH_DESCRIPTION)


class AccessRequestIn(BaseModel):
    patient_id: uuid.UUID
    scopes: Scopes
    organisation_id: uuid.UUID | None = Field(
        default=None, description="ask for the whole clinic (the caller must be a member)"
    )
    expires_at: datetime | None = None
    note: Note | None = None


class AccessRequestAccepted(BaseModel):
    status: Literal["requested"] = "requested"
    detail: str = "if the patient exists, they will see the request and decide"


class Reached(BaseModel):
    user_id: uuid.UUID
    display_name: str
    role: Role


class GrantOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    grantee_user_id: uuid.UUID | None
    grantee_organisation_id: uuid.UUID | None
    grantee_name: str
    scopes: list[Scope]
    reach: Reach | None = Field(description="whom a clinic grant reaches; null for a person")
    reaches: list[Reached] = Field(
        description="the people this grant reaches today (for a clinic: which of its members)"
    )
    status: Status
    in_force: bool = Field(description="active and not expired, right now")
    expires_at: datetime | None
    requested_by: uuid.UUID | None
    note: str | None
    created_at: datetime
    decided_at: datetime | None
    revoked_at: datetime | None


_GRANT_COLUMNS = """
g.id, g.patient_id, g.grantee_user_id, g.grantee_organisation_id,
coalesce(u.display_name, o.name, g.grantee_label) AS grantee_name, g.scopes,
CASE WHEN g.grantee_organisation_id IS NOT NULL THEN g.reach END AS reach,
coalesce((SELECT json_agg(json_build_object('user_id', ru.id, 'display_name', ru.display_name,
                                            'role', ru.role) ORDER BY ru.display_name, ru.id)
          FROM grant_reach r JOIN users ru ON ru.id = r.user_id AND NOT ru.disabled
          WHERE r.grant_id = g.id), '[]') AS reaches,
g.status,
(g.status = 'active' AND (g.expires_at IS NULL OR g.expires_at > now())) AS in_force,
g.expires_at, g.requested_by, g.note, g.created_at, g.decided_at, g.revoked_at
"""
_FROM = """
FROM grants g
LEFT JOIN users u ON u.id = g.grantee_user_id
LEFT JOIN organisations o ON o.id = g.grantee_organisation_id
"""


async def _one(request: Request, patient_id: uuid.UUID, grant_id: uuid.UUID) -> GrantOut:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(GrantOut))
        await cur.execute(
            f"SELECT {_GRANT_COLUMNS} {_FROM} WHERE g.id = %s AND g.patient_id = %s",
            (grant_id, patient_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise ProblemError(404, "not-found", "Not found", "no such grant")
    return row


async def _check_grantee(request: Request, body: GrantIn) -> None:
    async with pool_of(request).connection() as conn:
        if body.grantee_user_id is not None:
            roles = CARE_PLAN_ROLES if "care_plan" in body.scopes else GRANTEE_ROLES
            cur = await conn.execute(
                "SELECT 1 FROM users WHERE id = %s AND role = ANY (%s) AND NOT disabled",
                (body.grantee_user_id, [r.value for r in roles]),
            )
            what = (
                "clinician (only clinicians set a care plan)"
                if "care_plan" in body.scopes
                else "caregiver, nutritionist or clinician"
            )
        else:
            cur = await conn.execute(
                "SELECT 1 FROM organisations WHERE id = %s", (body.grantee_organisation_id,)
            )
            what = "clinic"
        if await cur.fetchone() is None:
            raise invalid(f"no such {what}")


@router.post(
    "/patients/{patient_id}/grants",
    response_model=GrantOut,
    status_code=201,
    summary="Share data with a person or a clinic (the patient only)",
    responses={**PATIENT_RESPONSES, 422: {"model": Problem, "description": "Bad grantee"}},
)
async def create_grant(request: Request, access: OwnerAccess, body: GrantIn) -> GrantOut:
    expires_at = _future(body.expires_at)
    await _check_grantee(request, body)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO grants (patient_id, grantee_user_id, grantee_organisation_id, scopes,"
            " status, expires_at, decided_at, reach)"
            " VALUES (%s, %s, %s, %s, 'active', %s, now(), %s) RETURNING id",
            (
                access.patient_id,
                body.grantee_user_id,
                body.grantee_organisation_id,
                sorted(set(body.scopes)),
                expires_at,
                body.reach,
            ),
        )
        row = await cur.fetchone()
    assert row is not None
    return await _one(request, access.patient_id, row[0])


@router.get(
    "/patients/{patient_id}/grants",
    response_model=Page[GrantOut],
    summary="Who the patient shares with, and pending requests (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def list_grants(
    request: Request,
    access: OwnerAccess,
    status: Annotated[Status | None, Query(description="only grants in this state")] = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[GrantOut]:
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(GrantOut))
        await cur.execute(
            f"SELECT {_GRANT_COLUMNS} {_FROM} WHERE g.patient_id = %(p)s"
            " AND (%(status)s::text IS NULL OR g.status = %(status)s)"
            " AND (%(at)s::timestamptz IS NULL OR (g.created_at, g.id) > (%(at)s, %(id)s::uuid))"
            " ORDER BY g.created_at, g.id LIMIT %(limit)s",
            {
                "p": access.patient_id,
                "status": status,
                "at": after_at,
                "id": after_id,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


GrantId = Annotated[uuid.UUID, Path(description="the grant's id")]


async def _transition(
    request: Request,
    patient_id: uuid.UUID,
    grant_id: uuid.UUID,
    *,
    source: str,
    target: str,
    stamp: str,
    expires_at: datetime | None = None,
    reach: Reach | None = None,
) -> GrantOut:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            f"UPDATE grants SET status = %(target)s, {stamp} = now(),"
            " expires_at = coalesce(%(expires)s, expires_at), reach = coalesce(%(reach)s, reach)"
            " WHERE id = %(id)s AND patient_id = %(p)s AND status = %(source)s RETURNING id",
            {
                "target": target,
                "expires": expires_at,
                "reach": reach,
                "id": grant_id,
                "p": patient_id,
                "source": source,
            },
        )
        changed = await cur.fetchone()
    grant = await _one(request, patient_id, grant_id)  # 404 when it is not this patient's
    if changed is None:
        raise ProblemError(
            409, "conflict", "Conflict", f"the grant is {grant.status}, not {source}"
        )
    return grant


@router.delete(
    "/patients/{patient_id}/grants/{grant_id}",
    status_code=204,
    summary="Revoke a grant: it stops counting at once (the patient only)",
    responses={**PATIENT_RESPONSES, 409: {"model": Problem, "description": "Not active"}},
)
async def revoke_grant(request: Request, access: OwnerAccess, grant_id: GrantId) -> Response:
    await _transition(
        request, access.patient_id, grant_id, source="active", target="revoked", stamp="revoked_at"
    )
    return Response(status_code=204)


@router.post(
    "/patients/{patient_id}/grants/{grant_id}/approve",
    response_model=GrantOut,
    summary="Approve an access request (the patient only)",
    responses={**PATIENT_RESPONSES, 409: {"model": Problem, "description": "Not pending"}},
)
async def approve_grant(
    request: Request, access: OwnerAccess, grant_id: GrantId, body: Approval | None = None
) -> GrantOut:
    expires_at = _future(body.expires_at if body else None)
    return await _transition(
        request,
        access.patient_id,
        grant_id,
        source="requested",
        target="active",
        stamp="decided_at",
        expires_at=expires_at,
        reach=body.reach if body else None,
    )


@router.post(
    "/patients/{patient_id}/grants/{grant_id}/decline",
    response_model=GrantOut,
    summary="Decline an access request (the patient only)",
    responses={**PATIENT_RESPONSES, 409: {"model": Problem, "description": "Not pending"}},
)
async def decline_grant(request: Request, access: OwnerAccess, grant_id: GrantId) -> GrantOut:
    return await _transition(
        request,
        access.patient_id,
        grant_id,
        source="requested",
        target="declined",
        stamp="decided_at",
    )


@router.post(
    "/access-requests",
    response_model=AccessRequestAccepted,
    status_code=202,
    summary="Ask a patient for access (care professionals); the answer never says whether "
    "the patient exists",
    responses={**AUTH_RESPONSES, 403: {"model": Problem, "description": "Not a care role"}},
)
async def request_access(
    request: Request, caller: CurrentUser, body: AccessRequestIn
) -> AccessRequestAccepted:
    if caller.role not in GRANTEE_ROLES:
        raise forbidden("only caregivers, nutritionists and clinicians ask for access")
    expires_at = _future(body.expires_at)
    async with pool_of(request).connection() as conn:
        if body.organisation_id is not None:
            if caller.role is Role.CAREGIVER:
                raise forbidden("caregivers ask for themselves, not for a clinic")
            cur = await conn.execute(
                "SELECT 1 FROM organisation_members WHERE organisation_id = %s AND user_id = %s",
                (body.organisation_id, caller.id),
            )
            if await cur.fetchone() is None:
                raise forbidden("only a member asks on behalf of a clinic")
        # Nothing is written for a patient that does not exist; the answer is the same.
        await conn.execute(
            "INSERT INTO grants (patient_id, grantee_user_id, grantee_organisation_id, scopes,"
            " status, expires_at, requested_by, note)"
            " SELECT p.id, %(user)s, %(org)s, %(scopes)s, 'requested', %(expires)s, %(by)s,"
            " %(note)s FROM patients p WHERE p.id = %(patient)s"
            " AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.patient_id = p.id"
            "   AND g.status = 'requested' AND g.requested_by = %(by)s)",
            {
                "user": caller.id if body.organisation_id is None else None,
                "org": body.organisation_id,
                "scopes": sorted(set(body.scopes)),
                "expires": expires_at,
                "by": caller.id,
                "note": body.note,
                "patient": body.patient_id,
            },
        )
    return AccessRequestAccepted()
