"""Accounts and clinics: patient sign-up, accounts made by admins, clinics and their members.

Who manages whom. Admins run the service: they create accounts (any role) and clinics.
Clinic admins manage their clinic's membership: they add existing care professionals to it
and remove members; they create no accounts (an account whose password a clinic admin chose
would let that clinic admin read what the account may read) and read no patient data. A
member added to a clinic reaches a patient only through a grant that reaches them (see
`api.care_team`): a clinic grant made while they were a member, or one the patient gave to
"everyone in the clinic, now and later"; the patient sees on each grant whom it reaches.

Sign-up does not tell whether an address already has an account: it answers the same either
way, and only the person who chose the password can then sign in.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from fastapi import APIRouter, Query, Request, Response
from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import AfterValidator, BaseModel, Field

from api import paging
from api.auth import (
    GRANTEE_ROLES,
    Caller,
    CurrentUser,
    Password,
    Role,
    insert_user,
    require_role,
)
from api.fields import EMAIL_PATTERN, MAX_EMAIL, Email, Name
from api.paging import Cursor, Limit, Page
from api.problems import AUTH_RESPONSES, Problem, conflict, forbidden, not_found
from api.state import pool_of
from core.units import Unit
from dashboards.i18n import Lang

router = APIRouter(prefix="/api/v1", tags=["users"])

_ZONES = frozenset(available_timezones())


def _zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError("not an IANA time zone, e.g. Europe/Paris")
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    created_at: datetime


class Me(UserOut):
    patient_id: uuid.UUID | None
    organisations: list[uuid.UUID]
    language: Lang | None = Field(description="chosen language; null: not chosen yet")
    unit: Unit | None = Field(description="chosen glucose unit; null: not chosen yet")


class Preferences(BaseModel):
    """What a user chooses for every page and export; a key left out is left as it is."""

    language: Lang | None = None
    unit: Unit | None = None


class Registration(BaseModel):
    email: Email
    display_name: Name
    password: Password
    timezone: TimeZone = "UTC"

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "email": "wang.fang@example.org",
                    "display_name": "Wang Fang",
                    "password": "a long passphrase",
                    "timezone": "Asia/Shanghai",
                }
            ]
        }
    }


class RegistrationAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    detail: str = (
        "sign in with this e-mail address and password; an address that already had an"
        " account keeps its own password"
    )


class NewUser(BaseModel):
    email: Email
    display_name: Name
    password: Password
    role: Role
    organisation_id: uuid.UUID | None = Field(
        default=None, description="clinic to add the new user to"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "email": "dr.chen@clinic.example",
                    "display_name": "Dr. Chen",
                    "password": "a long passphrase",
                    "role": "clinician",
                }
            ]
        }
    }


class OrganisationIn(BaseModel):
    name: Name


class OrganisationOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime


class MemberIn(BaseModel):
    user_id: uuid.UUID


_USER_COLUMNS = "id, email, display_name, role, created_at"


async def _user(request: Request, user_id: uuid.UUID) -> UserOut:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(UserOut))
        await cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        row = await cur.fetchone()
    if row is None:
        raise not_found("user")
    return row


@router.post(
    "/auth/register",
    response_model=RegistrationAccepted,
    status_code=202,
    summary="Sign up as a patient: an account and a patient record; the answer is the same "
    "whether or not the address already has an account",
    tags=["auth"],
)
async def register(request: Request, body: Registration) -> RegistrationAccepted:
    async with pool_of(request).connection() as conn:
        user_id = await insert_user(
            conn, body.email, body.display_name, Role.PATIENT, body.password
        )
        if user_id is not None:
            await conn.execute(
                "INSERT INTO patients (display_name, timezone, user_id) VALUES (%s, %s, %s)",
                (body.display_name, body.timezone, user_id),
            )
    return RegistrationAccepted()


@router.get("/users/me", response_model=Me, summary="The signed-in user", responses=AUTH_RESPONSES)
async def me(request: Request, caller: CurrentUser) -> Me:
    user = await _user(request, caller.id)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute("SELECT id FROM patients WHERE user_id = %s", (caller.id,))
        patient = await cur.fetchone()
        cur = await conn.execute(
            "SELECT organisation_id FROM organisation_members WHERE user_id = %s"
            " ORDER BY organisation_id",
            (caller.id,),
        )
        orgs = [r[0] for r in await cur.fetchall()]
        cur = await conn.execute("SELECT language, unit FROM users WHERE id = %s", (caller.id,))
        prefs = await cur.fetchone()
    language, unit = prefs if prefs is not None else (None, None)
    return Me(
        **user.model_dump(),
        patient_id=patient[0] if patient else None,
        organisations=orgs,
        language=language,
        unit=unit,
    )


async def saved_unit(conn: AsyncConnection[Any], user_id: uuid.UUID) -> Unit:
    """The unit the user chose (`PATCH /users/me`), mg/dL until they choose: what an export
    gives when the request names none."""
    cur = await conn.execute("SELECT unit FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    return Unit(row[0]) if row is not None and row[0] is not None else Unit.MG_DL


@router.patch(
    "/users/me",
    response_model=Me,
    summary="Save the signed-in user's language and glucose unit",
    responses=AUTH_RESPONSES,
)
async def save_preferences(request: Request, caller: CurrentUser, body: Preferences) -> Me:
    async with pool_of(request).connection() as conn:
        await conn.execute(
            "UPDATE users SET language = coalesce(%(language)s, language),"
            " unit = coalesce(%(unit)s, unit) WHERE id = %(user)s",
            {
                "language": None if body.language is None else body.language.value,
                "unit": None if body.unit is None else body.unit.value,
                "user": caller.id,
            },
        )
    return await me(request, caller)


async def _is_member(request: Request, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM organisation_members WHERE organisation_id = %s AND user_id = %s",
            (organisation_id, user_id),
        )
        return await cur.fetchone() is not None


async def _may_manage(request: Request, caller: Caller, organisation_id: uuid.UUID) -> None:
    if caller.role is Role.ADMIN:
        return
    if caller.role is Role.CLINIC_ADMIN and await _is_member(request, organisation_id, caller.id):
        return
    raise forbidden("only an admin, or an admin of this clinic, manages its members")


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    summary="Create an account (admins)",
    responses={
        **AUTH_RESPONSES,
        403: {"model": Problem, "description": "Not an admin"},
        409: {"model": Problem, "description": "The e-mail address is taken"},
    },
)
async def create_user(request: Request, body: NewUser, caller: CurrentUser) -> UserOut:
    if caller.role is not Role.ADMIN:
        raise forbidden(
            "only admins create accounts; a clinic admin adds existing care professionals"
            " to their clinic (POST /api/v1/organisations/{id}/members)"
        )
    async with pool_of(request).connection() as conn:
        if body.organisation_id is not None:
            cur = await conn.execute(
                "SELECT 1 FROM organisations WHERE id = %s", (body.organisation_id,)
            )
            if await cur.fetchone() is None:
                raise not_found("organisation")
        user_id = await insert_user(conn, body.email, body.display_name, body.role, body.password)
        if user_id is None:
            raise conflict("an account with this e-mail address exists")
        if body.organisation_id is not None:
            await conn.execute(
                "INSERT INTO organisation_members (organisation_id, user_id) VALUES (%s, %s)",
                (body.organisation_id, user_id),
            )
        if body.role is Role.PATIENT:
            await conn.execute(
                "INSERT INTO patients (display_name, user_id) VALUES (%s, %s)",
                (body.display_name, user_id),
            )
    return await _user(request, user_id)


_DIRECTORY = f"""
SELECT {_USER_COLUMNS} FROM users
WHERE NOT disabled
  AND (%(all)s OR role = ANY (%(roles)s))
  AND (%(email)s::text IS NULL OR lower(email) = lower(%(email)s))
  AND (%(after_at)s::timestamptz IS NULL OR (created_at, id) > (%(after_at)s, %(after_id)s::uuid))
ORDER BY created_at, id
LIMIT %(limit)s
"""


@router.get(
    "/users",
    response_model=Page[UserOut],
    summary="The directory of care professionals (admins see every account)",
    responses=AUTH_RESPONSES,
)
async def list_users(
    request: Request,
    caller: CurrentUser,
    email: Annotated[
        str | None, Query(max_length=MAX_EMAIL, pattern=EMAIL_PATTERN, description="exact address")
    ] = None,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[UserOut]:
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(UserOut))
        await cur.execute(
            _DIRECTORY,
            {
                "all": caller.role is Role.ADMIN,
                "roles": [r.value for r in GRANTEE_ROLES],
                "email": email,
                "after_at": after_at,
                "after_id": after_id,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


@router.post(
    "/organisations",
    response_model=OrganisationOut,
    status_code=201,
    summary="Create a clinic (admins)",
    responses={**AUTH_RESPONSES, 403: {"model": Problem, "description": "Not an admin"}},
)
async def create_organisation(
    request: Request, body: OrganisationIn, _admin: Annotated[Caller, require_role(Role.ADMIN)]
) -> OrganisationOut:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(OrganisationOut))
        await cur.execute(
            "INSERT INTO organisations (name) VALUES (%s) RETURNING id, name, created_at",
            (body.name,),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


@router.get(
    "/organisations",
    response_model=Page[OrganisationOut],
    summary="Clinics, so a patient can choose one to share with",
    responses=AUTH_RESPONSES,
)
async def list_organisations(
    request: Request,
    _caller: CurrentUser,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[OrganisationOut]:
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(OrganisationOut))
        await cur.execute(
            "SELECT id, name, created_at FROM organisations"
            " WHERE %(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s::uuid)"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


@router.post(
    "/organisations/{organisation_id}/members",
    status_code=204,
    summary="Add a user to a clinic (admins, or that clinic's admins)",
    responses={
        **AUTH_RESPONSES,
        403: {"model": Problem, "description": "The caller does not manage this clinic"},
        404: {"model": Problem, "description": "No such user or clinic"},
    },
)
async def add_member(
    request: Request, organisation_id: uuid.UUID, body: MemberIn, caller: CurrentUser
) -> None:
    await _may_manage(request, caller, organisation_id)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO organisation_members (organisation_id, user_id)"
            " SELECT o.id, u.id FROM organisations o, users u"
            " WHERE o.id = %s AND u.id = %s AND u.role <> 'patient'"
            " ON CONFLICT DO NOTHING RETURNING 1",
            (organisation_id, body.user_id),
        )
        added = await cur.fetchone()
        if added is None and not await _is_member(request, organisation_id, body.user_id):
            raise not_found("user or organisation (patients are not clinic members)")


@router.delete(
    "/organisations/{organisation_id}/members/{user_id}",
    status_code=204,
    summary="Remove a member from a clinic (admins, or that clinic's admins): clinic grants "
    "stop reaching them",
    responses={
        **AUTH_RESPONSES,
        403: {"model": Problem, "description": "The caller does not manage this clinic"},
        404: {"model": Problem, "description": "Not a member"},
    },
)
async def remove_member(
    request: Request, organisation_id: uuid.UUID, user_id: uuid.UUID, caller: CurrentUser
) -> Response:
    await _may_manage(request, caller, organisation_id)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "DELETE FROM organisation_members WHERE organisation_id = %s AND user_id = %s",
            (organisation_id, user_id),
        )
        if cur.rowcount == 0:
            raise not_found("member")
        # Leaving ends what a grant recorded for them: coming back does not bring it back.
        await conn.execute(
            "DELETE FROM grant_members WHERE user_id = %s AND grant_id IN"
            " (SELECT id FROM grants WHERE grantee_organisation_id = %s)",
            (user_id, organisation_id),
        )
    return Response(status_code=204)


@router.get(
    "/organisations/{organisation_id}/members",
    response_model=Page[UserOut],
    summary="A clinic's members (its members and admins)",
    responses={**AUTH_RESPONSES, 403: {"model": Problem, "description": "Not a member"}},
)
async def list_members(
    request: Request,
    organisation_id: uuid.UUID,
    caller: CurrentUser,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[UserOut]:
    if caller.role is not Role.ADMIN and not await _is_member(request, organisation_id, caller.id):
        raise forbidden("only members see a clinic's members")
    after_at, after_id = paging.decode_time(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(UserOut))
        await cur.execute(
            "SELECT u.id, u.email, u.display_name, u.role, u.created_at"
            " FROM organisation_members m JOIN users u ON u.id = m.user_id"
            " WHERE m.organisation_id = %(org)s AND (%(at)s::timestamptz IS NULL"
            "       OR (u.created_at, u.id) > (%(at)s, %(id)s::uuid))"
            " ORDER BY u.created_at, u.id LIMIT %(limit)s",
            {"org": organisation_id, "at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)
