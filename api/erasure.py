"""Erasing a patient's record: `DELETE /api/v1/patients/{id}` (the patient, with their
password).

An erasure is a row of `erasures` (migration 0013) and two steps, each safe to run again:

1. `revoke`: everything that lets anyone reach the record stops at once: every grant is
   revoked (clinicians, clinics, Nightscout followers), every bridge and home display is
   deleted from the broker (which disconnects it and refuses it from then on), webhooks,
   follower tokens, Nightscout sites and sign-in sessions go, research consent is withdrawn.
2. `delete`: one transaction removes the readings, marks, alerts, held records, devices,
   grants, access log, archives and personal details, the patient and the account.

What stays is the `erasures` row: ids and dates, no health data, no personal details, kept
for `erasure_retention_days` (README: "Your record"). A crash between or inside the steps
leaves the row at its step; the next request, or the API's job runner at start, resumes it.
One erasure runs at a time per patient (an advisory lock held while it runs).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from api import audit_log as audit
from api.access import AccessContext, require_patient
from api.auth import verify_password
from api.broker_admin import provisioner
from api.problems import PATIENT_RESPONSES, ProblemError
from api.state import client_address, pool_of, settings_of
from core.settings import ApiSettings

router = APIRouter(prefix="/api/v1", tags=["record"])

STEPS = ("revoke", "delete", "done")
# Advisory-lock namespace of erasures (the second key is the patient id's hash).
LOCK_SPACE = 180_013


class ErasureIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024, description="the patient's password")


class Erasure(BaseModel):
    patient_id: uuid.UUID
    requested_at: datetime
    finished_at: datetime | None
    keep_until: datetime = Field(
        description="until when the record that this erasure happened is kept (no health data)"
    )


_BEGIN = """
INSERT INTO erasures (patient_id, user_id, request_id, keep_until)
VALUES (%(patient)s, %(user)s, %(request)s, now() + %(keep)s)
ON CONFLICT (patient_id) DO NOTHING
"""
_ONE = """
SELECT patient_id, requested_at, finished_at, keep_until, step FROM erasures
WHERE patient_id = %s
"""
_LOCK = "SELECT pg_advisory_lock(%s, hashtext(%s::text))"
_UNLOCK = "SELECT pg_advisory_unlock(%s, hashtext(%s::text))"
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s, hashtext(%s::text))"

_REVOKE = (
    "UPDATE grants SET status = 'revoked', revoked_at = coalesce(revoked_at, now())"
    " WHERE patient_id = %(patient)s AND status IN ('active', 'requested')",
    "UPDATE bridges SET revoked_at = coalesce(revoked_at, now()) WHERE patient_id = %(patient)s",
    "UPDATE home_displays SET revoked_at = coalesce(revoked_at, now())"
    " WHERE patient_id = %(patient)s",
    "DELETE FROM nightscout_follower_tokens WHERE site_id IN"
    " (SELECT id FROM nightscout_sites WHERE patient_id = %(patient)s)",
    "UPDATE nightscout_sites SET deleted_at = coalesce(deleted_at, now())"
    " WHERE patient_id = %(patient)s",
    "DELETE FROM webhook_endpoints WHERE patient_id = %(patient)s",
    "DELETE FROM refresh_tokens WHERE user_id = %(user)s",
    "UPDATE patients SET research_opt_in = false WHERE id = %(patient)s",
)
# Children before parents; the audit trigger lets the erasing transaction remove this
# patient's access log (glucobridge.erasing).
_DELETE = (
    "SELECT set_config('glucobridge.erasing', %(patient)s::text, true)",
    "DELETE FROM reading_identities WHERE identity IN"
    " (SELECT identity FROM readings WHERE patient_id = %(patient)s)",
    "DELETE FROM readings WHERE patient_id = %(patient)s",
    "DELETE FROM reading_annotations WHERE patient_id = %(patient)s",
    "DELETE FROM alerts WHERE patient_id = %(patient)s",
    "DELETE FROM alert_thresholds WHERE patient_id = %(patient)s",
    "DELETE FROM held_records WHERE patient_id = %(patient)s",
    "DELETE FROM dead_letters WHERE patient_id = %(patient)s",
    # What the patient's bridges sent that could not be placed names no patient, only them.
    "DELETE FROM dead_letters WHERE sender IN"
    " (SELECT id FROM bridges WHERE patient_id = %(patient)s)",
    "DELETE FROM meter_syncs WHERE patient_id = %(patient)s",
    "DELETE FROM meters WHERE patient_id = %(patient)s",
    "DELETE FROM nightscout_follower_tokens WHERE grant_id IN"
    " (SELECT id FROM grants WHERE patient_id = %(patient)s)",
    "DELETE FROM grants WHERE patient_id = %(patient)s",
    "DELETE FROM bridges WHERE patient_id = %(patient)s",
    "DELETE FROM audit_log WHERE patient_id = %(patient)s",
    "DELETE FROM patients WHERE id = %(patient)s",  # cascades to the rest of the record
    "DELETE FROM refresh_tokens WHERE user_id = %(user)s",
    "DELETE FROM organisation_members WHERE user_id = %(user)s",
    "DELETE FROM login_attempts WHERE email = (SELECT lower(email) FROM users WHERE id = %(user)s)",
    "DELETE FROM users WHERE id = %(user)s",
    "UPDATE erasures SET step = 'done', finished_at = now() WHERE patient_id = %(patient)s",
)


async def _revoke_in_broker(
    settings: ApiSettings, patient: uuid.UUID, bridges: list[str], displays: list[str]
) -> None:
    """Delete the patient's bridges and displays from the broker, which disconnects them and
    refuses them from then on; one already deleted (a resumed erasure) is fine."""
    admin = provisioner(settings)
    if admin is None:
        raise ProblemError(
            503,
            "broker-provisioning-unavailable",
            "Broker admin unavailable",
            "bridges cannot be revoked: no broker admin configured"
            " (GLUCOBRIDGE_MQTT_ADMIN_URL, or GLUCOBRIDGE_RABBITMQ_ADMIN_URL on RabbitMQ)",
        )
    for bridge in bridges:
        await admin.revoke_bridge(bridge)
    for display in displays:
        await admin.revoke_display(display)
    if displays:
        await admin.forget_patient(patient)


async def _run_steps(
    conn: AsyncConnection[Any], settings: ApiSettings, patient: uuid.UUID, user: uuid.UUID
) -> None:
    """The steps not yet done, in order (the caller holds the patient's erasure lock)."""
    params = {"patient": patient, "user": user}
    cur = await conn.execute("SELECT step FROM erasures WHERE patient_id = %s", (patient,))
    row = await cur.fetchone()
    step = "done" if row is None else str(row[0])
    if step == "revoke":
        cur = await conn.execute("SELECT id FROM bridges WHERE patient_id = %s", (patient,))
        bridges = [str(r[0]) for r in await cur.fetchall()]
        cur = await conn.execute("SELECT id FROM home_displays WHERE patient_id = %s", (patient,))
        displays = [str(r[0]) for r in await cur.fetchall()]
        await conn.commit()
        if bridges or displays:
            await _revoke_in_broker(settings, patient, bridges, displays)
        async with conn.transaction():
            for statement in _REVOKE:
                await conn.execute(statement.encode(), params)
            await conn.execute(
                "UPDATE erasures SET step = 'delete' WHERE patient_id = %s", (patient,)
            )
        step = "delete"
    if step == "delete":
        async with conn.transaction():
            for statement in _DELETE:
                await conn.execute(statement.encode(), params)


async def resume(pool: AsyncConnectionPool, settings: ApiSettings, patient: uuid.UUID) -> bool:
    """Finish an erasure no one is running now; False when another process holds it."""
    async with pool.connection() as conn:
        cur = await conn.execute(_TRY_LOCK, (LOCK_SPACE, patient))
        row = await cur.fetchone()
        await conn.commit()  # a session lock: it outlives this transaction
        if row is None or not row[0]:
            return False
        try:
            cur = await conn.execute(
                "SELECT user_id FROM erasures WHERE patient_id = %s", (patient,)
            )
            found = await cur.fetchone()
            if found is not None:
                await _run_steps(conn, settings, patient, found[0])
            await conn.commit()
        finally:
            await conn.rollback()
            await conn.execute(_UNLOCK, (LOCK_SPACE, patient))
            await conn.commit()
    return True


async def _answer(conn: AsyncConnection[Any], patient: uuid.UUID) -> Erasure:
    cur = await conn.execute(_ONE, (patient,))
    row = await cur.fetchone()
    assert row is not None
    return Erasure(patient_id=row[0], requested_at=row[1], finished_at=row[2], keep_until=row[3])


def _wrong_password() -> ProblemError:
    return ProblemError(
        403, "password-mismatch", "Password does not match", "re-enter your password to erase"
    )


ErasureAccess = Annotated[
    AccessContext, Depends(require_patient(owner_only=True, after_erasure=True))
]


@router.delete(
    "/patients/{patient_id}",
    response_model=Erasure,
    summary="Erase one's record: revoke every access, delete the data (the patient only)",
    responses=PATIENT_RESPONSES,
)
async def erase_patient(request: Request, body: ErasureIn, access: ErasureAccess) -> Erasure:
    settings = settings_of(request)
    patient, user = access.patient_id, access.caller.id
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT password_hash FROM users WHERE id = %s AND NOT disabled", (user,)
        )
        account = await cur.fetchone()
        if account is not None:  # still there: not yet erased, or erased only half-way
            if not await verify_password(account[0], body.password):
                raise _wrong_password()
            await audit.record(
                conn,
                audit.AuditEntry(
                    patient_id=patient,
                    action="erasure_requested",
                    method=request.method,
                    path=request.url.path,
                    request_id=access.request_id,
                    client_address=client_address(request),
                    actor_user_id=user,
                    actor_role=access.caller.role.value,
                ),
            )
            await conn.execute(
                _BEGIN,
                {
                    "patient": patient,
                    "user": user,
                    "request": access.request_id,
                    "keep": timedelta(days=settings.erasure_retention_days),
                },
            )
            await conn.commit()
            # Waits while the job runner resumes this erasure (a session lock: it outlives
            # the transactions of the steps).
            await conn.execute(_LOCK, (LOCK_SPACE, patient))
            await conn.commit()
            try:
                await _run_steps(conn, settings, patient, user)
                await conn.commit()
            finally:
                await conn.rollback()
                await conn.execute(_UNLOCK, (LOCK_SPACE, patient))
                await conn.commit()
        return await _answer(conn, patient)
