"""The audit trail as the patient sees it, and the request id that ties a row to a request.

Rows are written through `api.audit_log.record`: by `api.access` on every patient-scoped
request, and by the other doors (Nightscout followers, FHIR clients).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import APIRouter, FastAPI, Request, Response
from psycopg.rows import class_row
from pydantic import BaseModel, Field

from api import paging
from api.access import OwnerAccess, request_id_of
from api.audit_log import ActorKind, Outcome
from api.paging import Cursor, Limit, Page
from api.problems import PATIENT_RESPONSES
from api.state import pool_of

router = APIRouter(prefix="/api/v1", tags=["audit"])


def install(app: FastAPI) -> None:
    """Every response carries X-Request-ID: the client's own if it sent a sane one."""

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request_id_of(request)
        response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        return response


class AccessLogEntry(BaseModel):
    id: int
    at: datetime
    actor_kind: ActorKind
    actor_user_id: uuid.UUID | None
    actor_name: str = Field(
        description="the user's name, or the token's or client's; for a refused attempt by "
        "someone the patient never shared with, only that (with their role)"
    )
    actor_role: str
    outcome: Outcome
    action: str
    method: str
    path: str
    client_address: str | None
    request_id: str
    grant_id: uuid.UUID | None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": 42,
                    "at": "2026-11-02T09:15:00Z",
                    "actor_kind": "user",
                    "actor_user_id": "0b7e4c1a-8f0e-4f7e-9d51-2a2c1b7f6a10",
                    "actor_name": "Dr. Chen",
                    "actor_role": "clinician",
                    "outcome": "allowed",
                    "action": "list_readings",
                    "method": "GET",
                    "path": "/api/v1/patients/6f1c.../readings",
                    "client_address": "203.0.113.7",
                    "request_id": "5d0c2f6e9a7b4c1e",
                    "grant_id": "9a1d2c3b-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
                }
            ]
        }
    }


# A refused attempt by someone the patient never shared with nor was asked by shows their
# role only: the patient learns that a stranger tried, not who they are or where from (the
# row keeps both for the operator). Everyone else is shown as they are.
STRANGER = "someone you have not shared with"
_LOG = f"""
SELECT a.id, a.at, a.actor_kind,
       CASE WHEN k.known THEN a.actor_user_id END AS actor_user_id,
       CASE WHEN NOT k.known THEN '{STRANGER}'
            ELSE coalesce(u.display_name, a.actor_label,
                          CASE WHEN a.actor_user_id IS NOT NULL THEN '(deleted user)'
                               ELSE a.actor_kind END)
       END AS actor_name,
       a.actor_role, a.outcome, a.action, a.method, a.path,
       CASE WHEN k.known THEN a.client_address END AS client_address,
       a.request_id, a.grant_id
FROM audit_log a
LEFT JOIN users u ON u.id = a.actor_user_id
CROSS JOIN LATERAL (
    SELECT a.outcome = 'allowed' OR a.actor_user_id IS NULL OR EXISTS (
        SELECT 1 FROM grants g
        WHERE g.patient_id = a.patient_id
          AND (g.requested_by = a.actor_user_id OR EXISTS (
                SELECT 1 FROM grant_reach r
                WHERE r.grant_id = g.id AND r.user_id = a.actor_user_id)))
) AS k(known)
WHERE a.patient_id = %(patient)s AND (%(before)s::bigint IS NULL OR a.id < %(before)s)
ORDER BY a.id DESC
LIMIT %(limit)s
"""


@router.get(
    "/patients/{patient_id}/access-log",
    response_model=Page[AccessLogEntry],
    summary="Who looked at this patient's data, newest first (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def access_log(
    request: Request,
    access: OwnerAccess,
    limit: Limit = paging.DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[AccessLogEntry]:
    before = paging.decode_int(cursor)
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=class_row(AccessLogEntry))
        await cur.execute(
            _LOG, {"patient": access.patient_id, "before": before, "limit": limit + 1}
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=rows, next_cursor=paging.encode(rows[-1].id, "log") if more and rows else None
    )
