"""Home displays: a bedside screen or a caregiver's buzzer that shows one patient's alerts.

The patient registers one and gets its broker credentials once: a user `display-...` of its
own (bound to that client id) in the patient's display role, which may subscribe to and
receive `glucose/v1/patients/{patient_id}/alerts` and nothing else. Revoking deletes the
client in the broker, which disconnects it at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api import paging
from api.access import OwnerAccess
from api.broker_admin import BrokerAdminError
from api.fields import Name
from api.paging import Cursor, Limit, Page
from api.problems import BROKER_RESPONSES, PATIENT_RESPONSES, broker_failed, not_found
from api.state import broker_admin_of, pool_of
from core.contract import patient_alerts_topic

router = APIRouter(prefix="/api/v1", tags=["patients"])


class DisplayIn(BaseModel):
    label: Name | None = None

    model_config = {"json_schema_extra": {"examples": [{"label": "bedside"}]}}


class DisplayOut(BaseModel):
    id: str
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class DisplayCredentialsOut(BaseModel):
    display_id: str
    mqtt_username: str = Field(description="also the only client id the broker accepts")
    mqtt_password: str = Field(description="shown once; the API keeps only the broker's hash")
    alerts_topic: str


@router.post(
    "/patients/{patient_id}/displays",
    response_model=DisplayCredentialsOut,
    status_code=201,
    summary="Register a home display of the patient's alerts; returns its MQTT credentials once",
    responses={**PATIENT_RESPONSES, **BROKER_RESPONSES},
)
async def register_display(
    request: Request, access: OwnerAccess, body: DisplayIn | None = None
) -> DisplayCredentialsOut:
    admin = broker_admin_of(request)
    try:
        credentials = await admin.provision_display(access.patient_id)
    except BrokerAdminError as exc:
        raise broker_failed(exc) from exc
    async with pool_of(request).connection() as conn:
        await conn.execute(
            "INSERT INTO home_displays (id, patient_id, label) VALUES (%s, %s, %s)",
            (credentials.username, access.patient_id, body.label if body else None),
        )
    return DisplayCredentialsOut(
        display_id=credentials.username,
        mqtt_username=credentials.username,
        mqtt_password=credentials.password,
        alerts_topic=patient_alerts_topic(str(access.patient_id)),
    )


@router.get(
    "/patients/{patient_id}/displays",
    response_model=Page[DisplayOut],
    summary="The patient's home displays, revoked ones included",
    responses=PATIENT_RESPONSES,
)
async def list_displays(
    request: Request,
    access: OwnerAccess,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[DisplayOut]:
    after_at, after_id = paging.decode_text(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(DisplayOut))
        await cur.execute(
            "SELECT id, label, created_at, revoked_at FROM home_displays WHERE patient_id = %(p)s"
            " AND (%(at)s::timestamptz IS NULL OR (created_at, id) > (%(at)s, %(id)s::text))"
            " ORDER BY created_at, id LIMIT %(limit)s",
            {"p": access.patient_id, "at": after_at, "id": after_id, "limit": limit + 1},
        )
        rows = await cur.fetchall()
    return paging.page_of(rows, limit)


@router.delete(
    "/patients/{patient_id}/displays/{display_id}",
    status_code=204,
    summary="Revoke a home display: the broker disconnects it and refuses its credentials",
    responses={**PATIENT_RESPONSES, **BROKER_RESPONSES},
)
async def revoke_display(
    request: Request,
    access: OwnerAccess,
    display_id: Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9-]+$")],
) -> Response:
    admin = broker_admin_of(request)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT 1 FROM home_displays WHERE id = %s AND patient_id = %s FOR UPDATE",
            (display_id, access.patient_id),
        )
        if await cur.fetchone() is None:
            raise not_found("display")
        try:
            await admin.revoke_display(display_id)  # again if already revoked: idempotent
        except BrokerAdminError as exc:
            raise broker_failed(exc) from exc
        await conn.execute(
            "UPDATE home_displays SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s",
            (display_id,),
        )
    return Response(status_code=204)
