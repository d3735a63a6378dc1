"""Hospital systems registered as FHIR clients of a clinic. A clinic admin (or an admin)
registers a client with its public JWK Set (or the URL it publishes it at) and the SMART
scopes it is pre-authorised for, and revokes it; the client then authenticates at the token
endpoint with an assertion signed by one of its keys (api.fhir.token)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, field_validator, model_validator

from api import paging
from api.auth import Caller, CurrentUser, Role
from api.fhir.keys import KeyProblem, check_jwks
from api.fhir.scopes import ScopeError, Scopes
from api.paging import Cursor, Limit, Page
from api.problems import AUTH_RESPONSES, Problem, forbidden, invalid, not_found
from api.state import pool_of, settings_of

router = APIRouter(prefix="/api/v1", tags=["fhir clients"])

# SMART: the JWK Set URL is TLS-protected; plain http is let through in development only,
# where the tests serve a client's keys from the loopback interface.
SECURE_SCHEME = "https://"
DEV_SCHEMES = ("https://", "http://")
MAX_NAME = 200

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_RESPONSES,
    403: {"model": Problem, "description": "Not an admin of this clinic"},
    404: {"model": Problem, "description": "No such clinic or client"},
}


class ClientIn(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)] = Field(
        description="shown to patients in their access log, e.g. 'North Hospital EHR'"
    )
    scopes: Annotated[list[str], Field(min_length=1, max_length=20)] = Field(
        description="SMART scopes the client may ask for, e.g. system/Observation.rs"
    )
    jwks: dict[str, Any] | None = Field(default=None, description="the client's public JWK Set")
    jwks_url: Annotated[str, Field(max_length=2000)] | None = Field(
        default=None, description="or the https URL where the client publishes it"
    )

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        try:
            parsed = Scopes.parse(value)
        except ScopeError as exc:
            raise ValueError(str(exc)) from exc
        if parsed.offered() != parsed:
            raise ValueError(f"this server offers at most {parsed.offered() or 'nothing'}")
        return str(parsed).split()

    @model_validator(mode="after")
    def _one_key_source(self) -> ClientIn:
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError("give exactly one of jwks and jwks_url")
        return self


class ClientOut(BaseModel):
    client_id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    scopes: list[str]
    jwks_url: str | None
    created_at: datetime
    revoked_at: datetime | None


_COLUMNS = "id AS client_id, organisation_id, name, scopes, jwks_url, created_at, revoked_at"


async def _may_manage(request: Request, caller: Caller, organisation_id: uuid.UUID) -> None:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute("SELECT 1 FROM organisations WHERE id = %s", (organisation_id,))
        if await cur.fetchone() is None:
            raise not_found("organisation")
        if caller.role is Role.ADMIN:
            return
        cur = await conn.execute(
            "SELECT 1 FROM organisation_members WHERE organisation_id = %s AND user_id = %s",
            (organisation_id, caller.id),
        )
        member = await cur.fetchone() is not None
    if caller.role is not Role.CLINIC_ADMIN or not member:
        raise forbidden("only an admin of this clinic manages its FHIR clients")


@router.post(
    "/organisations/{organisation_id}/fhir-clients",
    response_model=ClientOut,
    status_code=201,
    summary="Register a hospital system as a FHIR client of this clinic (clinic admins)",
    responses={**_RESPONSES, 422: {"model": Problem, "description": "Bad keys or scopes"}},
)
async def register_client(
    request: Request, organisation_id: uuid.UUID, body: ClientIn, caller: CurrentUser
) -> ClientOut:
    await _may_manage(request, caller, organisation_id)
    jwks = None
    if body.jwks is not None:
        try:
            jwks = check_jwks(body.jwks)
        except KeyProblem as exc:
            raise invalid(f"jwks: {exc}") from exc
    if body.jwks_url is not None:
        development = settings_of(request).environment == "development"
        if not body.jwks_url.startswith(DEV_SCHEMES if development else SECURE_SCHEME):
            raise invalid("jwks_url must be an https URL")
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO fhir_clients (organisation_id, name, jwks, jwks_url, scopes, created_by)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (
                organisation_id,
                body.name,
                Jsonb(jwks) if jwks is not None else None,
                body.jwks_url,
                body.scopes,
                caller.id,
            ),
        )
        row = await cur.fetchone()
    assert row is not None
    return _client(row)


def _client(row: tuple[Any, ...]) -> ClientOut:
    return ClientOut(
        client_id=row[0],
        organisation_id=row[1],
        name=row[2],
        scopes=list(row[3]),
        jwks_url=row[4],
        created_at=row[5],
        revoked_at=row[6],
    )


@router.get(
    "/organisations/{organisation_id}/fhir-clients",
    response_model=Page[ClientOut],
    summary="The clinic's FHIR clients, oldest first (clinic admins)",
    responses=_RESPONSES,
)
async def list_clients(
    request: Request,
    organisation_id: uuid.UUID,
    caller: CurrentUser,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[ClientOut]:
    await _may_manage(request, caller, organisation_id)
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM fhir_clients WHERE organisation_id = %(org)s"
            " AND (%(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s))"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"org": organisation_id, "at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = [_client(r) for r in await cur.fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(
        items=rows,
        next_cursor=paging.encode(last.created_at, last.client_id) if last else None,
    )


@router.delete(
    "/organisations/{organisation_id}/fhir-clients/{client_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke a FHIR client: its tokens stop working at once (clinic admins)",
    responses=_RESPONSES,
)
async def revoke_client(
    request: Request, organisation_id: uuid.UUID, client_id: uuid.UUID, caller: CurrentUser
) -> Response:
    await _may_manage(request, caller, organisation_id)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "UPDATE fhir_clients SET revoked_at = coalesce(revoked_at, now())"
            " WHERE id = %s AND organisation_id = %s",
            (client_id, organisation_id),
        )
        if cur.rowcount != 1:
            raise not_found("FHIR client")
    return Response(status_code=204)
