"""Every patient-scoped route × every kind of caller.

Routes come from `app.routes`, so a route another engineer adds under
/api/v1/patients/{patient_id}/... is covered the day it appears: it must carry exactly one
`require_patient` gate, let in exactly who its policy names, write an audit row for them,
and answer everyone else as if the patient did not exist (writing their refused attempt to
the patient's access log).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from api.access import Policy
from api.app import create_app
from api.auth import Role
from core.settings import ApiSettings
from tests.api.conftest import Cast, audit_rows, expired_token, forged_token
from tests.api.routes import RouteInfo, api_routes

ROUTES = api_routes(create_app(ApiSettings()))
PATIENT_ROUTES = [r for r in ROUTES if r.patient_scoped]
# Routes anyone may call without a token.
PUBLIC = {
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/register"),
    ("GET", "/api/v1/health"),
}


@dataclass(frozen=True)
class Caller:
    """A kind of caller and whether a route with a given policy should let them in."""

    key: str
    may: Callable[[Policy], bool]
    authenticated: bool = True


def _granted(role: Role, *scopes: str | None) -> Callable[[Policy], bool]:
    """Holds a grant in force with these scopes (every scope when none is named)."""

    def may(p: Policy) -> bool:
        if p.owner_only or (p.roles is not None and role not in p.roles):
            return False
        return not scopes or p.scope in scopes

    return may


CALLERS = [
    Caller("patient", lambda p: True),
    Caller("other_patient", lambda p: False),
    Caller("nutritionist_granted", _granted(Role.NUTRITIONIST)),
    Caller("caregiver_granted", _granted(Role.CAREGIVER)),
    Caller("clinician_via_clinic", _granted(Role.CLINICIAN)),
    Caller("nutritionist_readings_only", _granted(Role.NUTRITIONIST, None, "readings")),
    Caller("nutritionist_ungranted", lambda p: False),
    Caller("nutritionist_expired", lambda p: False),
    Caller("nutritionist_revoked", lambda p: False),
    Caller("clinic_admin_same", lambda p: False),  # manages the clinic, not its patients
    Caller("clinic_admin_other", lambda p: False),
    Caller("admin", lambda p: False),  # runs the service, sees no patient data
    Caller("no_token", lambda p: False, authenticated=False),
    Caller("forged_token", lambda p: False, authenticated=False),
    Caller("expired_token", lambda p: False, authenticated=False),
]


def _url(route: RouteInfo, patient_id: uuid.UUID) -> str:
    path = route.path.replace("{patient_id}", str(patient_id))
    # Other path parameters get a well-formed value that names nothing.
    return re.sub(r"\{[a-z_]+\}", lambda _m: str(uuid.uuid4()), path)


def _headers(cast: Cast, caller: Caller, request_id: str) -> dict[str, str]:
    headers = {"X-Request-ID": request_id}
    patient = cast.patient
    if caller.key == "forged_token":
        headers["Authorization"] = f"Bearer {forged_token(patient.id)}"
    elif caller.key == "expired_token":
        headers["Authorization"] = f"Bearer {expired_token(cast.secret, patient.id)}"
    elif caller.key != "no_token":
        headers.update(cast[caller.key].auth)
    return headers


def _call(
    client: httpx.Client, route: RouteInfo, url: str, headers: dict[str, str]
) -> httpx.Response:
    # Streamed, and closed after the head: an event-stream route that lets the caller in
    # would otherwise never end. Bodies are empty JSON objects: the gate runs before the
    # body is validated, so an allowed caller may get a 422 and that is fine here.
    body = {} if route.method in ("POST", "PUT", "PATCH") else None
    with client.stream(route.method, url, headers=headers, json=body) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
        return response


def test_every_patient_scoped_route_has_exactly_one_access_gate() -> None:
    assert len(PATIENT_ROUTES) >= 15, [r.path for r in ROUTES]
    unprotected = [f"{r.method} {r.path}" for r in PATIENT_ROUTES if len(r.policies) != 1]
    assert unprotected == [], "patient-scoped routes without exactly one require_patient gate"


def test_every_other_route_needs_a_token_unless_it_is_public(client: httpx.Client) -> None:
    for route in ROUTES:
        if route.patient_scoped or (route.method, route.path) in PUBLIC:
            continue
        url = re.sub(r"\{[a-z_]+\}", lambda _m: str(uuid.uuid4()), route.path)
        for auth in ({}, {"Authorization": f"Bearer {forged_token(uuid.uuid4())}"}):
            response = client.request(route.method, url, headers=auth, json={})
            assert response.status_code == 401, (route, auth, response.text)
            assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("route", PATIENT_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_route_lets_in_exactly_whom_its_policy_names(
    client: httpx.Client, cast: Cast, route: RouteInfo
) -> None:
    (policy,) = route.policies or (None,)
    assert policy is not None, f"{route.method} {route.path} has no access gate"
    patient_id = cast.patient.patient_id
    assert patient_id is not None
    outcomes = {}
    for caller in CALLERS:
        rid = f"matrix-{caller.key}-{uuid.uuid4().hex[:8]}"
        response = _call(client, route, _url(route, patient_id), _headers(cast, caller, rid))
        assert response.headers["x-request-id"] == rid
        rows = audit_rows(cast.database_url, rid)
        if caller.may(policy):
            assert response.status_code not in (401, 403), (caller.key, response.text)
            assert len(rows) == 1, (caller.key, response.status_code, response.text)
            actor, audited_patient, action, address, _grant, outcome = rows[0]
            who = cast[caller.key].id
            assert (actor, audited_patient, action, address, outcome) == (
                who,
                patient_id,
                route.name,
                "127.0.0.1",
                "allowed",
            )
            outcomes[caller.key] = "allowed"
            continue
        if not caller.authenticated:
            assert rows == [], f"{caller.key} is no one, yet was written to the log"
            assert response.status_code == 401, (caller.key, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            outcomes[caller.key] = "401"
            continue
        # The refused attempt is in the patient's log, as refused...
        assert rows == [(cast[caller.key].id, patient_id, route.name, "127.0.0.1", None, "denied")]
        # ...and to the caller a denial looks exactly like a patient that does not exist.
        assert response.status_code == 404, (caller.key, response.status_code, response.text)
        nobody = _call(
            client,
            route,
            _url(route, uuid.uuid4()),
            _headers(cast, caller, f"nobody-{uuid.uuid4().hex[:8]}"),
        )
        assert nobody.status_code == 404
        strip = lambda body: {k: v for k, v in body.items() if k != "instance"}  # noqa: E731
        assert strip(response.json()) == strip(nobody.json()), caller.key
        outcomes[caller.key] = "404"
    # The matrix is not vacuous: the patient always gets in, a stranger never does.
    assert outcomes["patient"] == "allowed"
    assert outcomes["other_patient"] == "404"
    granted = _granted(Role.NUTRITIONIST)(policy)
    assert outcomes["nutritionist_granted"] == ("allowed" if granted else "404")
    if policy.scope == "care_plan":  # the care plan: the patient and their clinician only
        assert outcomes["clinician_via_clinic"] == "allowed"
        assert outcomes["nutritionist_granted"] == outcomes["caregiver_granted"] == "404"
