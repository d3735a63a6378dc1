"""The patient's side: create, list, rotate and delete their Nightscout site, issue and revoke
follower tokens. Patient-only routes behind the one access gate (`require_patient`, owner
only), so they are audited and covered by the authorization matrix like every other."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api import paging
from api.access import OwnerAccess
from api.fields import Name
from api.nightscout import sites
from api.nightscout.credentials import sha1_hex
from api.paging import Cursor, Limit, Page
from api.problems import PATIENT_RESPONSES, Problem, conflict, invalid, not_found
from api.state import pool_of
from core.units import Unit

router = APIRouter(prefix="/api/v1/patients/{patient_id}/nightscout-sites", tags=["nightscout"])

SiteId = Annotated[uuid.UUID, Path(description="the site's id (stable; not its path)")]
TokenId = Annotated[uuid.UUID, Path(description="the follower token's id")]


class SiteIn(BaseModel):
    unit: Unit = Field(default=Unit.MG_DL, description="the unit followers are told to show")


class SiteOut(BaseModel):
    id: uuid.UUID
    path: str = Field(description="the site's base path: give apps https://<host><path>")
    unit: Unit
    created_at: datetime
    rotated_at: datetime | None


class SiteCreated(SiteOut):
    uploader_secret: str = Field(description="shown once: the app's API secret")
    uploader_secret_sha1: str = Field(
        description="its SHA-1, for uploaders that take the hash (the LibreLinkUp uploader)"
    )


class TokenIn(BaseModel):
    label: Name = Field(description="who follows with it, as the access log will show")
    expires_at: datetime | None = Field(default=None, description="null: until revoked")


class TokenOut(BaseModel):
    id: uuid.UUID
    grant_id: uuid.UUID
    label: str
    status: Literal["active", "revoked"]
    in_force: bool
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once: for ?token=, the api-secret header, or the v2 JWT")


def site_path(public_id: str) -> str:
    return f"/ns/{public_id}/api/v1/"


_SITE = """
SELECT id, public_id, unit, created_at, rotated_at FROM nightscout_sites
WHERE patient_id = %s AND deleted_at IS NULL
"""


async def _site_out(request: Request, patient_id: uuid.UUID, site_id: uuid.UUID) -> SiteOut:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_SITE + " AND id = %s", (patient_id, site_id))
        row = await cur.fetchone()
    if row is None:
        raise not_found("Nightscout site")
    return SiteOut(
        id=row[0], path=site_path(row[1]), unit=Unit(row[2]), created_at=row[3], rotated_at=row[4]
    )


async def _created(request: Request, new: sites.NewSite) -> SiteCreated:
    out = await _site_out(request, new.site.patient_id, new.site.id)
    return SiteCreated(
        **out.model_dump(),
        uploader_secret=new.secret.value,
        uploader_secret_sha1=sha1_hex(new.secret.value),
    )


@router.post(
    "",
    response_model=SiteCreated,
    status_code=201,
    summary="Create the patient's Nightscout site (the patient only); the secret is shown once",
    responses={**PATIENT_RESPONSES, 409: {"model": Problem, "description": "One already exists"}},
)
async def create_nightscout_site(
    request: Request, access: OwnerAccess, body: SiteIn | None = None
) -> SiteCreated:
    async with pool_of(request).connection() as conn:
        new = await sites.create_site(conn, access.patient_id, (body or SiteIn()).unit)
    if new is None:
        raise conflict("the patient has a Nightscout site already: rotate or delete it")
    return await _created(request, new)


@router.get(
    "",
    response_model=Page[SiteOut],
    summary="The patient's Nightscout site (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def list_nightscout_sites(request: Request, access: OwnerAccess) -> Page[SiteOut]:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_SITE + " ORDER BY created_at", (access.patient_id,))
        rows = await cur.fetchall()
    items = [
        SiteOut(id=r[0], path=site_path(r[1]), unit=Unit(r[2]), created_at=r[3], rotated_at=r[4])
        for r in rows
    ]
    return Page(items=items, next_cursor=None)


@router.post(
    "/{site_id}/rotate",
    response_model=SiteCreated,
    summary="New path and uploader secret; the old ones stop at once (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def rotate_nightscout_site(
    request: Request, access: OwnerAccess, site_id: SiteId
) -> SiteCreated:
    async with pool_of(request).connection() as conn:
        new = await sites.rotate_site(conn, access.patient_id, site_id)
    if new is None:
        raise not_found("Nightscout site")
    return await _created(request, new)


@router.delete(
    "/{site_id}",
    status_code=204,
    summary="Delete the site: it stops answering, its tokens are revoked (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def delete_nightscout_site(
    request: Request, access: OwnerAccess, site_id: SiteId
) -> Response:
    async with pool_of(request).connection() as conn:
        deleted = await sites.delete_site(conn, access.patient_id, site_id)
    if not deleted:
        raise not_found("Nightscout site")
    return Response(status_code=204)


async def _own_site(request: Request, patient_id: uuid.UUID, site_id: uuid.UUID) -> sites.Site:
    async with pool_of(request).connection() as conn:
        site = await sites.active_site(conn, patient_id)
    if site is None or site.id != site_id:
        raise not_found("Nightscout site")
    return site


_TOKENS = """
SELECT t.id, t.grant_id, t.label, CASE WHEN g.status = 'active' THEN 'active' ELSE 'revoked' END
       AS status,
       g.status = 'active' AND (g.expires_at IS NULL OR g.expires_at > now()) AS in_force,
       t.created_at, g.expires_at, g.revoked_at
FROM nightscout_follower_tokens t JOIN grants g ON g.id = t.grant_id
WHERE t.site_id = %(site)s
"""


@router.post(
    "/{site_id}/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Issue a read-only follower token (a `readings` grant); shown once (patient only)",
    responses={**PATIENT_RESPONSES, 422: {"model": Problem, "description": "Bad expiry"}},
)
async def create_follower_token(
    request: Request, access: OwnerAccess, site_id: SiteId, body: TokenIn
) -> TokenCreated:
    if body.expires_at is not None and (
        body.expires_at.tzinfo is None or body.expires_at <= datetime.now(UTC)
    ):
        raise invalid("expires_at must carry a time zone and be in the future")
    site = await _own_site(request, access.patient_id, site_id)
    async with pool_of(request).connection() as conn:
        new = await sites.create_token(conn, site, body.label, body.expires_at)
        cur = conn.cursor(row_factory=class_row(TokenOut))
        await cur.execute(_TOKENS + " AND t.id = %(id)s", {"site": site.id, "id": new.id})
        row = await cur.fetchone()
    assert row is not None
    return TokenCreated(**row.model_dump(), token=new.token)


@router.get(
    "/{site_id}/tokens",
    response_model=Page[TokenOut],
    summary="The site's follower tokens, oldest first (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def list_follower_tokens(
    request: Request,
    access: OwnerAccess,
    site_id: SiteId,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[TokenOut]:
    site = await _own_site(request, access.patient_id, site_id)
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(TokenOut))
        await cur.execute(
            _TOKENS + " AND (%(at)s::timestamptz IS NULL OR (t.created_at, t.id) >"
            " (%(at)s, %(id)s::uuid)) ORDER BY t.created_at, t.id LIMIT %(limit)s",
            {"site": site.id, "at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


@router.delete(
    "/{site_id}/tokens/{token_id}",
    status_code=204,
    summary="Revoke a follower token: it stops at once (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def revoke_follower_token(
    request: Request, access: OwnerAccess, site_id: SiteId, token_id: TokenId
) -> Response:
    site = await _own_site(request, access.patient_id, site_id)
    async with pool_of(request).connection() as conn:
        revoked = await sites.revoke_token(conn, site, token_id)
    if not revoked:
        raise not_found("active follower token")
    return Response(status_code=204)
