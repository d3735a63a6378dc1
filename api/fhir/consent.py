"""Whom a clinic's FHIR client may see, and the audit row every attempt leaves.

A client sees a patient when (1) its token carries the SMART scope for what it asks
(`system/Observation.rs` ...) and (2) the patient has a grant in force to the client's
clinic covering the data asked for: active, not expired, with the grant scope. Both are
checked on every request, so revoking or letting a grant expire takes effect at once. Each
read, and each refusal, is written to the patient's access log under the client's name.

A refusal is the same 403 whether or not the patient exists: it tells nothing about who is
a patient here. Only attempts at patients that exist are logged (each patient reads their
own log; a made-up id has no one to read it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from fastapi import Request
from psycopg import AsyncConnection

from api import audit_log
from api.access import request_id_of
from api.fhir.errors import forbidden
from api.fhir.token import FhirCaller
from api.state import client_address, pool_of

# The grant in force for a clinic: the one rule organisation clients are held to.
_GRANT = """
SELECT g.id FROM grants g
WHERE g.patient_id = %(patient)s
  AND g.grantee_organisation_id = %(organisation)s
  AND g.status = 'active'
  AND (g.expires_at IS NULL OR g.expires_at > now())
  AND (%(scope)s::text IS NULL OR %(scope)s::text = ANY (g.scopes))
ORDER BY g.created_at
LIMIT 1
"""
ACTOR_KIND: Final[audit_log.ActorKind] = "fhir_client"


async def clinic_grant(
    conn: AsyncConnection[Any],
    patient_id: uuid.UUID,
    organisation_id: uuid.UUID,
    scope: str | None,
) -> uuid.UUID | None:
    """The patient's grant in force to this clinic covering `scope` (None: any scope)."""
    cur = await conn.execute(
        _GRANT, {"patient": patient_id, "organisation": organisation_id, "scope": scope}
    )
    row = await cur.fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class Need:
    """What a FHIR interaction needs: a SMART scope, and a grant scope (None: any grant)."""

    resource: str
    permission: str  # c, r or s
    grant_scope: str | None

    @property
    def smart_scope(self) -> str:
        return f"system/{self.resource}.{self.permission}"


async def _log(
    conn: AsyncConnection[Any],
    request: Request,
    caller: FhirCaller,
    patient_id: uuid.UUID,
    action: str,
    grant_id: uuid.UUID | None,
    outcome: audit_log.Outcome,
) -> None:
    await audit_log.record(
        conn,
        audit_log.AuditEntry(
            patient_id=patient_id,
            action=action,
            method=request.method,
            path=request.url.path,
            request_id=request_id_of(request),
            client_address=client_address(request),
            actor_kind=ACTOR_KIND,
            actor_label=caller.name,
            grant_id=grant_id,
            outcome=outcome,
        ),
    )


async def admit(
    request: Request, caller: FhirCaller, patient_id: uuid.UUID, need: Need, action: str
) -> uuid.UUID:
    """The grant that lets `caller` do `action` on the patient, audited; or a 403, audited."""
    refusal = None
    async with pool_of(request).connection() as conn:
        grant_id = None
        if not caller.scopes.allows(need.resource, need.permission):
            refusal = f"the access token does not carry {need.smart_scope}"
        else:
            grant_id = await clinic_grant(
                conn, patient_id, caller.organisation_id, need.grant_scope
            )
            if grant_id is None:
                what = f"'{need.grant_scope}' " if need.grant_scope else ""
                refusal = f"no {what}grant in force from this patient to the client's clinic"
        if refusal is None:
            await _log(conn, request, caller, patient_id, action, grant_id, "allowed")
            assert grant_id is not None
            return grant_id
        cur = await conn.execute("SELECT 1 FROM patients WHERE id = %s", (patient_id,))
        if await cur.fetchone() is not None:
            await _log(conn, request, caller, patient_id, action, None, "denied")
    # Raised after the connection block has committed the audit row.
    raise forbidden(refusal)
