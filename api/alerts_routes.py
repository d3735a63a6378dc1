"""Alerts of one patient: the stored list, acknowledgement, a live stream (server-sent
events), the thresholds their clinician sets, and webhook endpoints.

Acknowledgements and thresholds are signed by the signed-in user (their name and id), never
by a name in the request. Thresholds are the care plan: the patient, or a clinician whose
grant includes `care_plan`, sets them (`care_plan_router`); anyone with `alerts` reads them.
Webhooks go only to https URLs on public addresses (`core.webhook_target`), checked here at
registration and by the alerts worker before every delivery."""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from psycopg.rows import class_row
from pydantic import AnyHttpUrl, BaseModel, Field, model_validator

from api.auth import CurrentUser
from api.paging import MAX_BIGINT
from api.patient_scope import Patient
from api.problems import ProblemError, invalid, not_found
from api.state import pool_of, settings_of
from core.units import Unit
from core.webhook_target import WebhookTargetError, resolve

router = APIRouter(prefix="/api/v1")
# Setting the thresholds: behind its own gate (care_plan, clinicians), see api.app.
care_plan_router = APIRouter(prefix="/api/v1")
# Webhooks send a patient's alerts to any URL: only the patient may add or see them, not
# the care team (their grants give alerts, not a way to copy them elsewhere).
webhooks_router = APIRouter(prefix="/api/v1")

DEFAULT_PAGE = 50
MAX_PAGE = 500
# The stream checks for alerts this often: a page reaches the screen within a second.
STREAM_POLL_S = 0.5
# An unacknowledged alert is sent again this often by default (a pager that keeps ringing);
# clients choose between the bounds.
DEFAULT_REPEAT_S = 60.0
MIN_REPEAT_S = 1.0
MAX_REPEAT_S = 3600.0
# A comment line this often keeps proxies from closing an idle stream.
HEARTBEAT_S = 15.0
# Closed episodes keep ringing until acknowledged, but not forever.
REPEAT_ENDED_FOR = "1 hour"
# Webhook secrets: 32 random bytes, as long as the HMAC-SHA256 key size.
SECRET_BYTES = 32


class AlertOut(BaseModel):
    id: int
    patient_id: uuid.UUID
    kind: str
    level: int
    subject: str
    audience: str
    delivery: Literal["page", "history"]
    started_at: datetime
    last_at: datetime
    ended_at: datetime | None
    extreme_mg_dl: float | None
    readings: int
    detail: dict[str, Any]
    created_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None = Field(description="the name of whoever acknowledged it")
    acknowledged_by_user_id: uuid.UUID | None


class AlertsPage(BaseModel):
    items: list[AlertOut]  # newest first
    next_cursor: str | None


class ThresholdsIn(BaseModel):
    unit: Unit
    low: float = Field(gt=0)
    very_low: float = Field(gt=0)
    high: float = Field(gt=0)
    max_hours_without_reading: float | None = Field(default=None, gt=0, le=24 * 14)
    meter_sync_days: int = Field(default=7, ge=1, le=90)
    time_below_range_pct: float = Field(default=4.0, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsIn:
        if not self.very_low < self.low < self.high:
            raise ValueError("thresholds must satisfy very_low < low < high")
        return self


class ThresholdsOut(ThresholdsIn):
    patient_id: uuid.UUID
    set_by: str = Field(description="the name of whoever set them (the signed-in user)")
    set_by_user_id: uuid.UUID | None
    updated_at: datetime


class WebhookIn(BaseModel):
    url: AnyHttpUrl = Field(
        description="https, to an address on the public internet (checked again at every"
        " delivery; redirects are not followed)"
    )

    model_config = {"json_schema_extra": {"examples": [{"url": "https://hooks.example.org/gb"}]}}


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="HMAC-SHA256 key; shown only in this answer")


class WebhooksPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


_ALERT_COLUMNS = (
    "id, patient_id, kind, level, subject, audience, delivery, started_at, last_at, ended_at,"
    " extreme_mg_dl, readings, detail, created_at, acknowledged_at, acknowledged_by,"
    " acknowledged_by_user_id"
)
# An alert id as a cursor: ASCII digits only (str.isdigit also takes '¹' and '٣').
_ALERT_CURSOR = re.compile(r"[0-9]{1,19}")


def _cursor_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not _ALERT_CURSOR.fullmatch(cursor) or int(cursor) >= MAX_BIGINT:
        raise ProblemError(
            422, "invalid-cursor", "Invalid cursor", "the cursor is not one this API returned"
        )
    return int(cursor)


@router.get(
    "/patients/{patient_id}/alerts", response_model=AlertsPage, summary="Alerts, newest first"
)
async def list_alerts(
    request: Request,
    patient: Patient,
    delivery: Annotated[Literal["page", "history"] | None, Query()] = None,
    open_only: Annotated[bool, Query(description="only episodes still going on")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> AlertsPage:
    before = _cursor_id(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(AlertOut))
        await cur.execute(
            f"SELECT {_ALERT_COLUMNS} FROM counted_alerts WHERE patient_id = %(p)s"
            " AND (%(delivery)s::text IS NULL OR delivery = %(delivery)s)"
            " AND (NOT %(open)s OR ended_at IS NULL)"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s)"
            " ORDER BY id DESC LIMIT %(limit)s",
            {
                "p": patient.id,
                "delivery": delivery,
                "open": open_only,
                "before": before,
                "limit": limit + 1,
            },
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return AlertsPage(items=rows, next_cursor=str(rows[-1].id) if more and rows else None)


@router.post(
    "/patients/{patient_id}/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    summary="Acknowledge an alert as the signed-in user: the live stream stops repeating it",
)
async def acknowledge(
    request: Request,
    patient: Patient,
    caller: CurrentUser,
    alert_id: Annotated[int, Path(ge=1, lt=MAX_BIGINT)],
) -> AlertOut:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(AlertOut))
        # The first acknowledgement stands: a second does not rename who acknowledged.
        await cur.execute(
            "UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now()),"
            " acknowledged_by_user_id = CASE WHEN acknowledged_at IS NULL THEN %(user)s"
            "   ELSE acknowledged_by_user_id END,"
            " acknowledged_by = coalesce(acknowledged_by, %(name)s)"
            f" WHERE id = %(id)s AND patient_id = %(p)s RETURNING {_ALERT_COLUMNS}",
            {"user": caller.id, "name": caller.display_name, "id": alert_id, "p": patient.id},
        )
        row = await cur.fetchone()
    if row is None:
        raise not_found("alert")
    return row


_RINGING = f"""
SELECT {_ALERT_COLUMNS} FROM counted_alerts
WHERE patient_id = %s AND delivery = 'page' AND acknowledged_at IS NULL
  AND (ended_at IS NULL OR ended_at > now() - interval '{REPEAT_ENDED_FOR}')
ORDER BY id
"""


@router.get(
    "/patients/{patient_id}/alerts/stream",
    summary="Live alerts as server-sent events; unacknowledged ones repeat every repeat_s",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    patient: Patient,
    repeat_s: Annotated[float, Query(ge=MIN_REPEAT_S, le=MAX_REPEAT_S)] = DEFAULT_REPEAT_S,
) -> StreamingResponse:
    pool = pool_of(request)
    loop = asyncio.get_running_loop()

    async def events() -> AsyncIterator[str]:
        last_sent: dict[int, float] = {}
        last_any = loop.time()
        yield ": connected\n\n"
        while not await request.is_disconnected():
            async with pool.connection() as conn:
                cur = conn.cursor(row_factory=class_row(AlertOut))
                await cur.execute(_RINGING, (patient.id,))
                ringing = await cur.fetchall()
            now = loop.time()
            for alert in ringing:
                sent = last_sent.get(alert.id)
                if sent is None or now - sent >= repeat_s:
                    last_sent[alert.id] = last_any = now
                    data = alert.model_dump_json()
                    yield f"id: {alert.id}\nevent: alert\ndata: {data}\n\n"
            if now - last_any >= HEARTBEAT_S:
                last_any = now
                yield ": heartbeat\n\n"
            await asyncio.sleep(STREAM_POLL_S)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


_THRESHOLD_COLUMNS = (
    "patient_id, unit, low, very_low, high, max_hours_without_reading, meter_sync_days,"
    " time_below_range_pct, set_by, set_by_user_id, updated_at"
)


@router.get(
    "/patients/{patient_id}/alert-thresholds",
    response_model=ThresholdsOut | None,
    summary="The patient's alert thresholds (null: the consensus defaults apply)",
)
async def get_thresholds(request: Request, patient: Patient) -> ThresholdsOut | None:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(ThresholdsOut))
        await cur.execute(
            f"SELECT {_THRESHOLD_COLUMNS} FROM alert_thresholds WHERE patient_id = %s",
            (patient.id,),
        )
        return await cur.fetchone()


@care_plan_router.put(
    "/patients/{patient_id}/alert-thresholds",
    response_model=ThresholdsOut,
    summary="Set the patient's alert thresholds (the patient, or a clinician whose grant "
    "includes care_plan), signed by the signed-in user",
)
async def put_thresholds(
    request: Request, patient: Patient, caller: CurrentUser, body: ThresholdsIn
) -> ThresholdsOut:
    fields = body.model_dump()
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(ThresholdsOut))
        await cur.execute(
            "INSERT INTO alert_thresholds (patient_id, unit, low, very_low, high,"
            " max_hours_without_reading, meter_sync_days, time_below_range_pct, set_by,"
            " set_by_user_id)"
            " VALUES (%(p)s, %(unit)s, %(low)s, %(very_low)s, %(high)s,"
            " %(max_hours_without_reading)s, %(meter_sync_days)s, %(time_below_range_pct)s,"
            " %(set_by)s, %(set_by_user_id)s)"
            " ON CONFLICT (patient_id) DO UPDATE SET unit = EXCLUDED.unit, low = EXCLUDED.low,"
            " very_low = EXCLUDED.very_low, high = EXCLUDED.high,"
            " max_hours_without_reading = EXCLUDED.max_hours_without_reading,"
            " meter_sync_days = EXCLUDED.meter_sync_days,"
            " time_below_range_pct = EXCLUDED.time_below_range_pct,"
            " set_by = EXCLUDED.set_by, set_by_user_id = EXCLUDED.set_by_user_id,"
            f" updated_at = now() RETURNING {_THRESHOLD_COLUMNS}",
            fields
            | {
                "p": patient.id,
                "unit": body.unit.value,
                "set_by": caller.display_name,
                "set_by_user_id": caller.id,
            },
        )
        row = await cur.fetchone()
    assert row is not None
    return row


@webhooks_router.post(
    "/patients/{patient_id}/webhooks",
    response_model=WebhookCreated,
    status_code=201,
    summary="Register a webhook for the patient's alerts (signed with the returned secret)",
)
async def create_webhook(request: Request, patient: Patient, body: WebhookIn) -> WebhookCreated:
    allow_private = settings_of(request).webhook_allow_private
    try:  # resolving the name is blocking I/O: off the event loop
        await asyncio.to_thread(resolve, str(body.url), allow_private=allow_private)
    except WebhookTargetError as exc:
        raise invalid(exc.reason) from exc
    secret = secrets.token_urlsafe(SECRET_BYTES)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "INSERT INTO webhook_endpoints (patient_id, url, secret) VALUES (%s, %s, %s)"
            " RETURNING id, created_at",
            (patient.id, str(body.url), secret),
        )
        row = await cur.fetchone()
    assert row is not None
    return WebhookCreated(id=row[0], url=str(body.url), created_at=row[1], secret=secret)


@webhooks_router.get(
    "/patients/{patient_id}/webhooks", response_model=WebhooksPage, summary="Webhook endpoints"
)
async def list_webhooks(
    request: Request,
    patient: Patient,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[uuid.UUID | None, Query()] = None,
) -> WebhooksPage:
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(WebhookOut))
        await cur.execute(
            "SELECT id, url, created_at FROM webhook_endpoints WHERE patient_id = %s"
            " AND (%s::uuid IS NULL OR id > %s) ORDER BY id LIMIT %s",
            (patient.id, cursor, cursor, limit + 1),
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return WebhooksPage(items=rows, next_cursor=str(rows[-1].id) if more and rows else None)


@webhooks_router.delete(
    "/patients/{patient_id}/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook"
)
async def delete_webhook(request: Request, patient: Patient, webhook_id: uuid.UUID) -> Response:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "DELETE FROM webhook_endpoints WHERE id = %s AND patient_id = %s",
            (webhook_id, patient.id),
        )
    if cur.rowcount == 0:
        raise not_found("webhook")
    return Response(status_code=204)
