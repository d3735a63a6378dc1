"""Patients, the meters they claim and the bridges in their homes."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from psycopg.rows import class_row
from pydantic import AfterValidator, BaseModel, Field

from api import audit_log as audit
from api import paging
from api.access import SCOPES, AnyGrantAccess, OwnerAccess, ReadingsAccess, Scope, request_id_of
from api.auth import GRANTEE_ROLES, CurrentUser
from api.broker_admin import BrokerAdminError
from api.fields import PRINTABLE, Name
from api.paging import Cursor, Limit, Page
from api.problems import (
    AUTH_RESPONSES,
    BROKER_RESPONSES,
    PATIENT_RESPONSES,
    ProblemError,
    broker_failed,
)
from api.state import broker_admin_of, client_address, pool_of
from api.users import TimeZone
from core.broker_roles import is_reserved_name
from core.contract import acks_topic, readings_topic, status_topic
from core.vocabulary import SourceKind

router = APIRouter(prefix="/api/v1", tags=["patients"])

# Meter serials as meters report them (GLS Serial Number String): printable, short.
Serial = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class PatientSummary(BaseModel):
    id: uuid.UUID
    display_name: str
    timezone: str
    access: Literal["owner", "grant"]
    scopes: list[Scope]


class PatientOut(BaseModel):
    id: uuid.UUID
    display_name: str
    timezone: str
    research_opt_in: bool | None = Field(description="shown to the patient only")


class PatientUpdate(BaseModel):
    display_name: Name | None = None
    timezone: TimeZone | None = None
    research_opt_in: bool | None = Field(
        default=None, description="include my readings, de-identified, in research exports"
    )


class MeterClaim(BaseModel):
    serial: Serial

    model_config = {"json_schema_extra": {"examples": [{"serial": "CNO-1001-7731"}]}}


class MeterOut(BaseModel):
    serial: str
    manufacturer: str | None
    model: str | None
    source: SourceKind
    first_seen: datetime
    claimed_at: datetime | None = Field(
        description="null: the patient's bridge synced this meter but it is not claimed yet"
    )
    awaiting_claim: int = Field(description="readings held until the patient claims it")


class Claimed(MeterOut):
    attached_readings: int = Field(
        description="readings the patient's own bridges synced from it, now counted"
    )


# A bridge's id is the name asked for (or "bridge") and this many random bytes in hex: ids
# never collide, so registering one says nothing about anyone else's bridges, and a bridge's
# MQTT user name cannot be guessed from its owner's choice.
BRIDGE_SUFFIX_BYTES = 6
DEFAULT_BRIDGE_NAME = "bridge"
# Room for "-" and the suffix within a bridge id's 64 characters.
MAX_BRIDGE_NAME = 64 - 1 - 2 * BRIDGE_SUFFIX_BYTES
# A fresh suffix is drawn again on the (48-bit) chance that one is taken.
BRIDGE_ID_ATTEMPTS = 3


def _bridge_name(value: str) -> str:
    if is_reserved_name(value):
        raise ValueError(
            "reserved: a bridge's name may not be a UUID (patients' and users' ids) nor start"
            " with a service's name (api, admin, ingest, alerts, display, glucobridge)"
        )
    return value


BridgeName = Annotated[
    str,
    Field(min_length=1, max_length=MAX_BRIDGE_NAME, pattern=r"^[a-z0-9][a-z0-9_-]*$"),
    AfterValidator(_bridge_name),
]


class BridgeIn(BaseModel):
    name: BridgeName = Field(
        default=DEFAULT_BRIDGE_NAME,
        description="the start of the bridge's id; a random part is added (see bridge_id)",
    )
    label: Name | None = None

    model_config = {"json_schema_extra": {"examples": [{"name": "home-wang", "label": "kitchen"}]}}


class BridgeOut(BaseModel):
    id: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class BridgeCredentialsOut(BaseModel):
    bridge_id: str = Field(description="the name asked for, a random part: the bridge's id")
    mqtt_username: str = Field(description="the bridge id, also the only client id it may use")
    mqtt_password: str = Field(description="shown once; the API keeps only the broker's hash")
    readings_topic: str
    status_topic: str
    acks_topic: str


_VISIBLE = """
SELECT p.id, p.display_name, p.timezone,
       CASE WHEN p.user_id = %(user)s THEN 'owner' ELSE 'grant' END AS access,
       CASE WHEN p.user_id = %(user)s THEN %(all_scopes)s::text[]
            ELSE (SELECT array_agg(DISTINCT s ORDER BY s) FROM grants_in_force g, unnest(g.scopes) s
                  WHERE g.patient_id = p.id AND g.user_id = %(user)s)
       END AS scopes
FROM patients p
WHERE (p.user_id = %(user)s OR (%(may_be_granted)s AND EXISTS (
        SELECT 1 FROM grants_in_force g WHERE g.patient_id = p.id AND g.user_id = %(user)s)))
  AND (%(after)s::uuid IS NULL OR p.id > %(after)s::uuid)
ORDER BY p.id
LIMIT %(limit)s
"""


@router.get(
    "/patients",
    response_model=Page[PatientSummary],
    summary="Patients the caller may see: themself, and those who granted them access",
    responses=AUTH_RESPONSES,
)
async def list_patients(
    request: Request,
    caller: CurrentUser,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[PatientSummary]:
    after = paging.decode_key(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(PatientSummary))
        await cur.execute(
            _VISIBLE,
            {
                "user": caller.id,
                # Admins and clinic admins read no patient data, whatever a grant says.
                "may_be_granted": caller.role in GRANTEE_ROLES,
                "all_scopes": list(SCOPES),
                "after": after,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
        # Names are patient data: each patient listed sees this in their access log.
        shown = rows[:limit]
        for p in shown:
            await audit.record(
                conn,
                audit.AuditEntry(
                    patient_id=p.id,
                    action="list_patients",
                    method=request.method,
                    path=request.url.path,
                    request_id=request_id_of(request),
                    client_address=client_address(request),
                    actor_user_id=caller.id,
                    actor_role=caller.role.value,
                ),
            )
    more = len(rows) > limit
    last = shown[-1] if more and shown else None
    return Page(
        items=shown,
        next_cursor=paging.encode(0, last.id) if last else None,
    )


@router.get(
    "/patients/{patient_id}",
    response_model=PatientOut,
    summary="A patient's profile (any grant in force)",
    responses=PATIENT_RESPONSES,
)
async def get_patient(request: Request, access: AnyGrantAccess) -> PatientOut:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT display_name, timezone, research_opt_in FROM patients WHERE id = %s",
            (access.patient_id,),
        )
        row = await cur.fetchone()
    assert row is not None  # the access check found it
    return PatientOut(
        id=access.patient_id,
        display_name=row[0],
        timezone=row[1],
        research_opt_in=row[2] if access.is_owner else None,
    )


@router.patch(
    "/patients/{patient_id}",
    response_model=PatientOut,
    summary="Change one's name, time zone or research consent (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def update_patient(request: Request, access: OwnerAccess, body: PatientUpdate) -> PatientOut:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "UPDATE patients SET display_name = coalesce(%(name)s, display_name),"
            " timezone = coalesce(%(tz)s, timezone),"
            " research_opt_in = coalesce(%(opt_in)s, research_opt_in)"
            " WHERE id = %(id)s RETURNING display_name, timezone, research_opt_in",
            {
                "name": body.display_name,
                "tz": body.timezone,
                "opt_in": body.research_opt_in,
                "id": access.patient_id,
            },
        )
        row = await cur.fetchone()
        assert row is not None
        if body.research_opt_in is not None:
            # The consent's history (the patient's archive holds it): a change, not a repeat.
            await conn.execute(
                _CONSENT_CHANGED,
                {"id": access.patient_id, "opt_in": body.research_opt_in, "user": access.caller.id},
            )
    return PatientOut(
        id=access.patient_id, display_name=row[0], timezone=row[1], research_opt_in=row[2]
    )


_CONSENT_CHANGED = """
INSERT INTO research_consent_history (patient_id, opted_in, changed_by)
SELECT %(id)s, %(opt_in)s, %(user)s
WHERE %(opt_in)s IS DISTINCT FROM (
    SELECT opted_in FROM research_consent_history WHERE patient_id = %(id)s
    ORDER BY id DESC LIMIT 1
) AND (%(opt_in)s OR EXISTS (SELECT 1 FROM research_consent_history WHERE patient_id = %(id)s))
"""


# A claim is the patient's own: it attaches only readings that this patient's bridges
# delivered (held for them, awaiting the claim), never another patient's, and it tells the
# caller nothing about whether anyone else has seen or claimed the serial. Two patients of
# one household may both claim a shared meter; each gets what their own bridges synced.
_CLAIM = """
INSERT INTO meters (patient_id, serial, claimed_at) VALUES (%(patient)s, %(serial)s, now())
ON CONFLICT (patient_id, serial) DO UPDATE SET
    claimed_at = coalesce(meters.claimed_at, EXCLUDED.claimed_at)
RETURNING serial, manufacturer, model, source, first_seen, claimed_at, 0 AS awaiting_claim
"""
_ATTACH = """
UPDATE readings SET awaiting_claim = false
WHERE patient_id = %(patient)s AND device = %(serial)s AND awaiting_claim
"""


@router.post(
    "/patients/{patient_id}/meters",
    response_model=Claimed,
    summary="Claim a meter by serial: what the patient's own bridges synced from it counts",
    responses=PATIENT_RESPONSES,
)
async def claim_meter(request: Request, access: OwnerAccess, body: MeterClaim) -> Claimed:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(MeterOut))
        await cur.execute(_CLAIM, {"serial": body.serial, "patient": access.patient_id})
        meter = await cur.fetchone()
        assert meter is not None  # an upsert always returns its row
        attached = await conn.execute(
            _ATTACH, {"patient": access.patient_id, "serial": body.serial}
        )
        count = attached.rowcount
    return Claimed(**meter.model_dump(), attached_readings=count)


@router.get(
    "/patients/{patient_id}/meters",
    response_model=Page[MeterOut],
    summary="The patient's meters",
    responses=PATIENT_RESPONSES,
)
async def list_meters(
    request: Request,
    access: ReadingsAccess,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[MeterOut]:
    after_at, after_serial = paging.decode_text(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(MeterOut))
        await cur.execute(
            "SELECT serial, manufacturer, model, source, first_seen, claimed_at,"
            " (SELECT count(*) FROM readings r WHERE r.patient_id = m.patient_id"
            "    AND r.device = m.serial AND r.awaiting_claim) AS awaiting_claim"
            " FROM meters m WHERE patient_id = %(patient)s AND (%(at)s::timestamptz IS NULL"
            "   OR (first_seen, serial) > (%(at)s, %(serial)s::text))"
            " ORDER BY first_seen, serial LIMIT %(limit)s",
            {
                "patient": access.patient_id,
                "at": after_at,
                "serial": after_serial,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(
        items=rows, next_cursor=paging.encode(last.first_seen, last.serial) if last else None
    )


@router.post(
    "/patients/{patient_id}/bridges",
    response_model=BridgeCredentialsOut,
    status_code=201,
    summary="Register a bridge in the patient's home; returns its MQTT credentials once",
    responses={**PATIENT_RESPONSES, **BROKER_RESPONSES},
)
async def register_bridge(
    request: Request, access: OwnerAccess, body: BridgeIn | None = None
) -> BridgeCredentialsOut:
    body = body or BridgeIn()
    admin = broker_admin_of(request)
    async with pool_of(request).connection() as conn:
        for _ in range(BRIDGE_ID_ATTEMPTS):
            bridge_id = f"{body.name}-{secrets.token_hex(BRIDGE_SUFFIX_BYTES)}"
            cur = await conn.execute(
                "INSERT INTO bridges (id, patient_id, label) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING id",
                (bridge_id, access.patient_id, body.label),
            )
            if await cur.fetchone() is not None:
                break
        else:
            raise RuntimeError("no free bridge id after several random draws")
        try:
            credentials = await admin.provision_bridge(bridge_id)
        except BrokerAdminError as exc:
            raise broker_failed(exc) from exc  # the bridge row is rolled back
    return BridgeCredentialsOut(
        bridge_id=bridge_id,
        mqtt_username=credentials.username,
        mqtt_password=credentials.password,
        readings_topic=readings_topic(bridge_id),
        status_topic=status_topic(bridge_id),
        acks_topic=acks_topic(bridge_id),
    )


@router.get(
    "/patients/{patient_id}/bridges",
    response_model=Page[BridgeOut],
    summary="The patient's bridges, revoked ones included",
    responses=PATIENT_RESPONSES,
)
async def list_bridges(
    request: Request,
    access: OwnerAccess,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[BridgeOut]:
    after_at, after_id = paging.decode_text(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(BridgeOut))
        await cur.execute(
            "SELECT id, label, created_at, revoked_at FROM bridges WHERE patient_id = %(p)s"
            " AND (%(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s::text))"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"p": access.patient_id, "at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


@router.delete(
    "/patients/{patient_id}/bridges/{bridge_id}",
    status_code=204,
    summary="Revoke a bridge: the broker disconnects it and refuses its credentials",
    responses={**PATIENT_RESPONSES, **BROKER_RESPONSES},
)
async def revoke_bridge(
    request: Request,
    access: OwnerAccess,
    bridge_id: Annotated[str, Path(max_length=64, pattern=PRINTABLE)],
) -> Response:
    admin = broker_admin_of(request)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT revoked_at FROM bridges WHERE id = %s AND patient_id = %s FOR UPDATE",
            (bridge_id, access.patient_id),
        )
        if await cur.fetchone() is None:
            raise ProblemError(404, "not-found", "Not found", "no such bridge")
        try:
            await admin.revoke_bridge(bridge_id)  # again if already revoked: idempotent
        except BrokerAdminError as exc:
            raise broker_failed(exc) from exc
        await conn.execute(
            "UPDATE bridges SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s",
            (bridge_id,),
        )
    return Response(status_code=204)
