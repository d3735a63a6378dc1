"""The one gate in front of every patient-scoped route.

`require_patient(scope)` resolves the caller, decides whether they may see this patient at
the time of the request (the patient themself, or a care-team grant that is active, not
expired, covers the scope, and names them or a clinic they practise in), writes the audit
row, and hands the route an `AccessContext`. A caller who may not see the patient gets the
same 404 as for a patient that does not exist: a denial says nothing about who exists.

    @router.get("/patients/{patient_id}/trends")
    async def trends(access: Annotated[AccessContext, Depends(require_patient("trends"))]): ...
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal, get_args

from fastapi import Depends, Path, Request

from api import audit_log as audit
from api.auth import CLINICAL_ROLES, Caller, CurrentUser, Role
from api.problems import not_found
from api.state import client_address, pool_of

Scope = Literal["readings", "trends", "alerts", "exports"]
SCOPES: tuple[Scope, ...] = get_args(Scope)

# X-Request-ID as a client may send it: printable, no spaces, short enough for a log line.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Policy:
    """What a route asks: a scope a grant must cover (None: any grant in force will do), or
    the patient themself only (their settings, consent, devices, access log)."""

    scope: Scope | None
    owner_only: bool


@dataclass(frozen=True)
class AccessContext:
    patient_id: uuid.UUID
    caller: Caller
    is_owner: bool
    grant_id: uuid.UUID | None  # the grant that let a care-team member in
    request_id: str


def request_id_of(request: Request) -> str:
    found: str | None = getattr(request.state, "request_id", None)
    if found is None:
        sent = request.headers.get("x-request-id", "")
        found = sent if REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        request.state.request_id = found
    return found


_PATIENT = "SELECT user_id = %(user)s FROM patients WHERE id = %(patient)s"

# The grant in force now: active, not past its expiry, covering the scope, and naming the
# caller or (for clinical roles) a clinic the caller is a member of.
_GRANT = """
SELECT g.id FROM grants g
WHERE g.patient_id = %(patient)s
  AND g.status = 'active'
  AND (g.expires_at IS NULL OR g.expires_at > now())
  AND (%(scope)s::text IS NULL OR %(scope)s::text = ANY (g.scopes))
  AND (g.grantee_user_id = %(user)s
       OR (%(clinical)s AND g.grantee_organisation_id IN
           (SELECT organisation_id FROM organisation_members WHERE user_id = %(user)s)))
ORDER BY g.created_at
LIMIT 1
"""


def _action(request: Request) -> str:
    """The route's name (its operation), as the patient will read it in their access log."""
    route = request.scope.get("route")
    return str(getattr(route, "name", None) or request.url.path)


def require_patient(
    scope: Scope | None = None, *, owner_only: bool = False
) -> Callable[..., Awaitable[AccessContext]]:
    policy = Policy(scope, owner_only)

    async def patient_access(
        request: Request,
        patient_id: Annotated[uuid.UUID, Path(description="the patient's id")],
        caller: CurrentUser,
    ) -> AccessContext:
        async with pool_of(request).connection() as conn:
            cur = await conn.execute(_PATIENT, {"user": caller.id, "patient": patient_id})
            row = await cur.fetchone()
            if row is None:
                raise not_found("patient")
            is_owner = bool(row[0])
            grant_id: uuid.UUID | None = None
            if not is_owner:
                if policy.owner_only or caller.role in (Role.ADMIN, Role.CLINIC_ADMIN):
                    raise not_found("patient")
                cur = await conn.execute(
                    _GRANT,
                    {
                        "patient": patient_id,
                        "scope": policy.scope,
                        "user": caller.id,
                        "clinical": caller.role in CLINICAL_ROLES,
                    },
                )
                grant = await cur.fetchone()
                if grant is None:
                    raise not_found("patient")
                grant_id = grant[0]
            request_id = request_id_of(request)
            await audit.record(
                conn,
                audit.AuditEntry(
                    patient_id=patient_id,
                    action=_action(request),
                    method=request.method,
                    path=request.url.path,
                    request_id=request_id,
                    client_address=client_address(request),
                    actor_user_id=caller.id,
                    actor_role=caller.role.value,
                    grant_id=grant_id,
                ),
            )
        return AccessContext(patient_id, caller, is_owner, grant_id, request_id)

    patient_access.policy = policy  # type: ignore[attr-defined]  # read by the route audit
    return patient_access


def policy_of(dependency: object) -> Policy | None:
    """The policy of a `require_patient` dependency, None for any other callable."""
    found = getattr(dependency, "policy", None)
    return found if isinstance(found, Policy) else None


# Ready-made dependencies for the common cases.
OwnerAccess = Annotated[AccessContext, Depends(require_patient(owner_only=True))]
AnyGrantAccess = Annotated[AccessContext, Depends(require_patient())]
ReadingsAccess = Annotated[AccessContext, Depends(require_patient("readings"))]
TrendsAccess = Annotated[AccessContext, Depends(require_patient("trends"))]
AlertsAccess = Annotated[AccessContext, Depends(require_patient("alerts"))]
ExportsAccess = Annotated[AccessContext, Depends(require_patient("exports"))]
