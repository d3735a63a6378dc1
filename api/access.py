"""The one gate in front of every patient-scoped route.

`require_patient(scope)` resolves the caller, decides whether they may see this patient at
the time of the request (the patient themself, or a care-team grant that is active, not
expired, covers the scope, and reaches them: it names them, or a clinic they practise in and
either they were a member when it came into force or it covers everyone in the clinic; see
the `grant_reach` view), writes the audit row, and hands the route an `AccessContext`. A
caller who may not see the patient gets the same 404 as for a patient that does not exist:
a denial says nothing about who exists. A refused attempt on a patient who exists is written
to that patient's access log too (`outcome = denied`).

    @router.get("/patients/{patient_id}/trends")
    async def trends(access: Annotated[AccessContext, Depends(require_patient("trends"))]): ...
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, Path, Request
from psycopg import AsyncConnection

from api import audit_log as audit
from api.auth import Caller, Role, current_or_erased_user, current_user
from api.problems import not_found
from api.state import client_address, pool_of

# `care_plan`: set the patient's alert thresholds (clinicians only, see CARE_PLAN_ROLES).
Scope = Literal["readings", "trends", "alerts", "exports", "care_plan"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
# Who, besides the patient, may change the care plan (alert thresholds) with that scope.
CARE_PLAN_ROLES = frozenset({Role.CLINICIAN})

# X-Request-ID as a client may send it: printable, no spaces, short enough for a log line.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Policy:
    """What a route asks: a scope a grant must cover (None: any grant in force will do), or
    the patient themself only (their settings, consent, devices, access log); `roles`, when
    set, are the only roles a grant lets in (the patient always may)."""

    scope: Scope | None
    owner_only: bool
    roles: frozenset[Role] | None = None

    def admits(self, role: Role) -> bool:
        """Whether a caller of this role may come in through a grant at all."""
        if self.owner_only or role in (Role.ADMIN, Role.CLINIC_ADMIN):
            return False
        return self.roles is None or role in self.roles


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

# A grant in force now that reaches the caller and covers the scope (migration 0007 defines
# "in force" and "reaches" once, as views).
_GRANT = """
SELECT grant_id FROM grants_in_force
WHERE patient_id = %(patient)s AND user_id = %(user)s
  AND (%(scope)s::text IS NULL OR %(scope)s::text = ANY (scopes))
ORDER BY created_at
LIMIT 1
"""


def _action(request: Request) -> str:
    """The route's name (its operation), as the patient will read it in their access log."""
    route = request.scope.get("route")
    return str(getattr(route, "name", None) or request.url.path)


# An erasure this caller made of this patient (migration 0013): the erase route answers a
# repeated request as it answered the first, though the patient and the account are gone.
_ERASED = "SELECT 1 FROM erasures WHERE patient_id = %(patient)s AND user_id = %(user)s"


def require_patient(
    scope: Scope | None = None,
    *,
    owner_only: bool = False,
    roles: frozenset[Role] | None = None,
    after_erasure: bool = False,
) -> Callable[..., Awaitable[AccessContext]]:
    """The gate; `after_erasure` (the erase route only) also lets in the patient who erased
    this record, once it is gone, without an audit row: there is no log left to write to,
    and the erasure's own record stands for it."""
    policy = Policy(scope, owner_only, roles)
    caller_dependency = current_or_erased_user if after_erasure else current_user

    async def patient_access(
        request: Request,
        patient_id: Annotated[uuid.UUID, Path(description="the patient's id")],
        caller: Caller = Depends(caller_dependency),  # noqa: B008  # chosen per gate
    ) -> AccessContext:
        async with pool_of(request).connection() as conn:
            cur = await conn.execute(_PATIENT, {"user": caller.id, "patient": patient_id})
            row = await cur.fetchone()
            if row is None and after_erasure:
                cur = await conn.execute(_ERASED, {"user": caller.id, "patient": patient_id})
                if await cur.fetchone() is not None:
                    return AccessContext(patient_id, caller, True, None, request_id_of(request))
            if row is None:
                raise not_found("patient")
            is_owner = bool(row[0])
            grant_id: uuid.UUID | None = None
            if not is_owner:
                if policy.admits(caller.role):
                    cur = await conn.execute(
                        _GRANT, {"patient": patient_id, "scope": policy.scope, "user": caller.id}
                    )
                    grant = await cur.fetchone()
                    grant_id = grant[0] if grant is not None else None
                if grant_id is None:
                    # Kept even though the request fails: the patient sees who was refused.
                    await audit.record(conn, _entry(request, patient_id, caller, None, "denied"))
                    await conn.commit()
                    raise not_found("patient")
            await audit.record(conn, _entry(request, patient_id, caller, grant_id, "allowed"))
        return AccessContext(patient_id, caller, is_owner, grant_id, request_id_of(request))

    patient_access.policy = policy  # type: ignore[attr-defined]  # read by the route audit
    return patient_access


def _entry(
    request: Request,
    patient_id: uuid.UUID,
    caller: Caller,
    grant_id: uuid.UUID | None,
    outcome: audit.Outcome,
) -> audit.AuditEntry:
    return audit.AuditEntry(
        patient_id=patient_id,
        action=_action(request),
        method=request.method,
        path=request.url.path,
        request_id=request_id_of(request),
        client_address=client_address(request),
        actor_user_id=caller.id,
        actor_role=caller.role.value,
        grant_id=grant_id,
        outcome=outcome,
    )


async def record_allowed(
    conn: AsyncConnection[Any],
    request: Request,
    patient_id: uuid.UUID,
    caller: Caller,
    grant_id: uuid.UUID | None,
) -> None:
    """The audit row of an access a list route decided itself (the worklist's one query
    selects exactly the patients this gate would let in)."""
    await audit.record(conn, _entry(request, patient_id, caller, grant_id, "allowed"))


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
CarePlanAccess = Annotated[
    AccessContext, Depends(require_patient("care_plan", roles=CARE_PLAN_ROLES))
]
