"""Acceptance 2: a hospital client sees exactly the patients who granted its clinic access,
for as long as the grant lasts, within the SMART scopes it was given; every refusal is a
403 OperationOutcome, and every attempt and every read is in the patient's access log under
the client's name."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg

from tests.fhir.conftest import (
    FHIR,
    HospitalKey,
    World,
    access_log,
    access_token,
    grant,
    register,
)

CLIENT_NAME = "North Hospital EHR"


def _get(http: httpx.Client, token: str, path: str) -> httpx.Response:
    return http.get(FHIR + path, headers={"Authorization": f"Bearer {token}"})


def _refused(response: httpx.Response, status: int = 403) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error"
    assert body["issue"][0]["code"] == ("forbidden" if status == 403 else "login")
    return body


def _observations(patient: uuid.UUID) -> str:
    return f"/Observation?patient=Patient/{patient}"


def _clients(log: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(action, outcome, actor kind, actor name) of the log's rows left by FHIR clients,
    oldest first (the patient's own reading of their log is in it too)."""
    return [
        (e["action"], e["outcome"], e["actor_kind"], e["actor_name"])
        for e in reversed(log)
        if e["actor_kind"] == "fhir_client"
    ]


def _log(http: httpx.Client, world: World) -> list[tuple[str, str, str, str]]:
    return _clients(access_log(http, world.patient))


def test_a_client_sees_a_patient_while_the_grant_lasts_and_each_attempt_is_logged(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key, name=CLIENT_NAME)
    token = access_token(http, key, client, "system/Observation.rs system/Patient.rs")
    patient = world.patient_id
    assert _get(http, token, _observations(patient)).status_code == 200
    assert _get(http, token, f"/Patient/{patient}").status_code == 200

    # A patient who granted nothing, one who granted another clinic, one who does not exist:
    # the same refusal, which tells nothing about who is a patient here.
    grant(world.database_url, world.stranger_id, world.other_clinic, ["readings", "trends"])
    nobody = uuid.uuid4()
    answers = [
        _refused(_get(http, token, _observations(p)))["issue"][0]["diagnostics"]
        for p in (world.stranger_id, nobody)
    ]
    assert answers[0] == answers[1]
    assert _clients(access_log(http, world.stranger)) == [
        ("fhir_search_observations", "denied", "fhir_client", CLIENT_NAME)
    ]
    with psycopg.connect(world.database_url) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log WHERE patient_id = %s", (nobody,))
        assert row.fetchone() == (0,)

    # The patient revokes the clinic's grant through the API: refused from the next request.
    grants = http.get(f"/api/v1/patients/{patient}/grants", headers=world.patient.auth).json()
    (clinic_grant,) = [g for g in grants["items"] if g["grantee_organisation_id"]]
    revoked = http.delete(
        f"/api/v1/patients/{patient}/grants/{clinic_grant['id']}", headers=world.patient.auth
    )
    assert revoked.status_code == 204
    _refused(_get(http, token, _observations(patient)))

    # A new grant lets the client in again; once it expires, it no longer does.
    renewed = grant(world.database_url, patient, world.clinic, ["readings"])
    assert _get(http, token, _observations(patient)).status_code == 200
    with psycopg.connect(world.database_url) as conn:
        conn.execute(
            "UPDATE grants SET expires_at = now() - interval '1 second' WHERE id = %s",
            (renewed,),
        )
    _refused(_get(http, token, _observations(patient)))

    assert _log(http, world) == [
        ("fhir_search_observations", "allowed", "fhir_client", CLIENT_NAME),
        ("fhir_read_patient", "allowed", "fhir_client", CLIENT_NAME),
        ("fhir_search_observations", "denied", "fhir_client", CLIENT_NAME),  # revoked
        ("fhir_search_observations", "allowed", "fhir_client", CLIENT_NAME),
        ("fhir_search_observations", "denied", "fhir_client", CLIENT_NAME),  # expired
    ]


def test_a_client_is_refused_what_its_scopes_or_the_grant_do_not_cover(
    http: httpx.Client, world: World
) -> None:
    key = HospitalKey.generate()
    client = register(
        http, world.admin, world.clinic, key, name=CLIENT_NAME, scopes=["system/Observation.rs"]
    )
    token = access_token(http, key, client, "system/Observation.rs")
    patient = world.patient_id
    # SMART scopes the clinic never gave this client.
    _refused(_get(http, token, f"/Patient/{patient}"))
    _refused(_get(http, token, f"/Device?patient=Patient/{patient}"))
    # A grant with readings but not trends: readings yes, the CGM summary no.
    with psycopg.connect(world.database_url) as conn:
        conn.execute(
            "UPDATE grants SET scopes = ARRAY['readings'] WHERE patient_id = %s", (patient,)
        )
    assert _get(http, token, _observations(patient)).status_code == 200
    summary = _get(http, token, _observations(patient) + "&code=http://loinc.org|107931-8")
    assert "trends" in _refused(summary)["issue"][0]["diagnostics"]
    assert _log(http, world) == [
        ("fhir_read_patient", "denied", "fhir_client", CLIENT_NAME),
        ("fhir_search_devices", "denied", "fhir_client", CLIENT_NAME),
        ("fhir_search_observations", "allowed", "fhir_client", CLIENT_NAME),
        ("fhir_search_cgm_summary", "denied", "fhir_client", CLIENT_NAME),
    ]


def test_without_a_valid_token_nothing_is_answered(http: httpx.Client, world: World) -> None:
    patient = world.patient_id
    for headers in (
        {},
        {"Authorization": "Bearer not-a-token"},
        # A user's own API token is not a FHIR token.
        world.admin.auth,
        world.patient.auth,
    ):
        response = http.get(FHIR + _observations(patient), headers=headers)
        _refused(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    # What anyone may read: the CapabilityStatement and the SMART configuration.
    assert http.get(FHIR + "/metadata").status_code == 200
    assert _log(http, world) == []
