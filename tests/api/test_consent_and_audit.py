"""Consent over time and the access log: a grant works while in force and not after; every
read by a care-team member is in the patient's list; the log cannot be rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from api.audit import STRANGER
from tests.api.conftest import Cast


def _log(client: httpx.Client, cast: Cast) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = []
    params: dict[str, object] = {"limit": 3}
    url = f"/api/v1/patients/{cast.patient.patient_id}/access-log"
    while True:
        page = client.get(url, params=params, headers=cast.patient.auth).json()
        entries += page["items"]
        if page["next_cursor"] is None:
            return entries
        params["cursor"] = page["next_cursor"]


def test_each_read_by_the_care_team_is_in_the_patients_access_log(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient.patient_id
    reads = [
        ("nutritionist_granted", f"/api/v1/patients/{patient}/readings", "list_readings"),
        ("clinician_via_clinic", f"/api/v1/patients/{patient}/exports/fhir", "export_fhir"),
        ("nutritionist_granted", f"/api/v1/patients/{patient}", "get_patient"),
        ("caregiver_granted", f"/api/v1/patients/{patient}/readings", "list_readings"),
    ]
    sent = []
    for key, url, action in reads:
        response = client.get(url, headers=cast[key].auth)
        assert response.status_code == 200, response.text
        sent.append((str(cast[key].id), action, response.headers["x-request-id"]))
    # A denied attempt is listed as such: the patient sees who tried after their access ended.
    refused = client.get(reads[0][1], headers=cast["nutritionist_revoked"].auth)
    assert refused.status_code == 404

    entries = _log(client, cast)  # paged three at a time: walks several pages
    listed = [(e["actor_user_id"], e["action"], e["request_id"]) for e in entries]
    for item in sent:
        assert item in listed
    assert {
        e["outcome"] for e in entries if e["request_id"] != refused.headers["x-request-id"]
    } == {"allowed"}
    denied = [e for e in entries if e["outcome"] == "denied"]
    assert [(e["actor_user_id"], e["actor_name"], e["action"], e["grant_id"]) for e in denied] == [
        (str(cast["nutritionist_revoked"].id), "Test nutritionist_revoked", "list_readings", None)
    ]
    by_request = {e["request_id"]: e for e in entries}
    first = by_request[sent[0][2]]
    assert first["actor_name"] == "Test nutritionist_granted"
    assert first["actor_role"] == "nutritionist"
    assert first["client_address"] == "127.0.0.1"
    assert first["grant_id"] is not None
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)


def test_the_access_log_is_the_patients_alone(client: httpx.Client, cast: Cast) -> None:
    url = f"/api/v1/patients/{cast.patient.patient_id}/access-log"
    assert client.get(url, headers=cast["nutritionist_granted"].auth).status_code == 404


def test_a_client_request_id_is_kept_and_a_bad_one_replaced(
    client: httpx.Client, cast: Cast
) -> None:
    url = f"/api/v1/patients/{cast.patient.patient_id}/readings"
    kept = client.get(url, headers={**cast.patient.auth, "X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"
    replaced = client.get(url, headers={**cast.patient.auth, "X-Request-ID": "bad id\twith tab"})
    assert replaced.headers["x-request-id"] != "bad id\twith tab"
    assert len(replaced.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"]
)
def test_the_audit_log_refuses_to_be_rewritten(
    client: httpx.Client, cast: Cast, statement: str
) -> None:
    client.get(f"/api/v1/patients/{cast.patient.patient_id}", headers=cast.patient.auth)
    with psycopg.connect(cast.database_url) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            conn.execute(statement.encode())
        conn.rollback()
        row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    assert row is not None and row[0] >= 1


def test_grant_revoke_and_expiry_act_at_the_time_of_the_request(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient
    nutritionist = cast["nutritionist_ungranted"]
    url = f"/api/v1/patients/{patient.patient_id}/readings"
    assert client.get(url, headers=nutritionist.auth).status_code == 404

    grant = client.post(
        f"/api/v1/patients/{patient.patient_id}/grants",
        json={"grantee_user_id": str(nutritionist.id), "scopes": ["readings"]},
        headers=patient.auth,
    )
    assert grant.status_code == 201, grant.text
    assert grant.json()["in_force"] is True
    assert client.get(url, headers=nutritionist.auth).status_code == 200
    # The scope is what was granted: readings, not exports.
    export = f"/api/v1/patients/{patient.patient_id}/exports/readings.csv"
    assert client.get(export, headers=nutritionist.auth).status_code == 404
    listed = client.get("/api/v1/patients", headers=nutritionist.auth).json()["items"]
    assert [(p["id"], p["access"], p["scopes"]) for p in listed] == [
        (str(patient.patient_id), "grant", ["readings"])
    ]

    revoked = client.delete(
        f"/api/v1/patients/{patient.patient_id}/grants/{grant.json()['id']}",
        headers=patient.auth,
    )
    assert revoked.status_code == 204
    assert client.get(url, headers=nutritionist.auth).status_code == 404

    # A grant that runs out: in force now, not once its expiry has passed.
    soon = client.post(
        f"/api/v1/patients/{patient.patient_id}/grants",
        json={
            "grantee_user_id": str(nutritionist.id),
            "scopes": ["readings"],
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        },
        headers=patient.auth,
    ).json()
    assert client.get(url, headers=nutritionist.auth).status_code == 200
    with psycopg.connect(cast.database_url) as conn:  # an hour passes
        conn.execute(
            "UPDATE grants SET expires_at = now() - interval '1 second' WHERE id = %s",
            (soon["id"],),
        )
    assert client.get(url, headers=nutritionist.auth).status_code == 404


def test_a_clinician_asks_and_the_patient_approves_or_declines(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient
    clinician = cast["nutritionist_ungranted"]
    url = f"/api/v1/patients/{patient.patient_id}/readings"
    ask = {"patient_id": str(patient.patient_id), "scopes": ["readings", "trends"]}
    asked = client.post("/api/v1/access-requests", json=ask, headers=clinician.auth)
    assert asked.status_code == 202
    # Asking about a patient that does not exist answers exactly the same.
    ghost = client.post(
        "/api/v1/access-requests",
        json={**ask, "patient_id": "00000000-0000-4000-8000-000000000000"},
        headers=clinician.auth,
    )
    assert (ghost.status_code, ghost.json()) == (asked.status_code, asked.json())
    assert client.get(url, headers=clinician.auth).status_code == 404  # not yet

    pending = client.get(
        f"/api/v1/patients/{patient.patient_id}/grants",
        params={"status": "requested"},
        headers=patient.auth,
    ).json()["items"]
    assert [(g["grantee_user_id"], g["scopes"]) for g in pending] == [
        (str(clinician.id), ["readings", "trends"])
    ]
    approved = client.post(
        f"/api/v1/patients/{patient.patient_id}/grants/{pending[0]['id']}/approve",
        headers=patient.auth,
    )
    assert approved.status_code == 200 and approved.json()["status"] == "active"
    assert client.get(url, headers=clinician.auth).status_code == 200
    again = client.post(
        f"/api/v1/patients/{patient.patient_id}/grants/{pending[0]['id']}/decline",
        headers=patient.auth,
    )
    assert again.status_code == 409

    # A second request, declined: nothing opens.
    other = cast["clinic_admin_other"]  # not a care role: may not even ask
    assert client.post("/api/v1/access-requests", json=ask, headers=other.auth).status_code == 403
    caregiver = cast["nutritionist_expired"]
    client.post("/api/v1/access-requests", json=ask, headers=caregiver.auth)
    request_id = client.get(
        f"/api/v1/patients/{patient.patient_id}/grants",
        params={"status": "requested"},
        headers=patient.auth,
    ).json()["items"][0]["id"]
    declined = client.post(
        f"/api/v1/patients/{patient.patient_id}/grants/{request_id}/decline",
        headers=patient.auth,
    )
    assert declined.json()["status"] == "declined"
    assert client.get(url, headers=caregiver.auth).status_code == 404


def test_a_strangers_refused_attempt_is_logged_without_who_they_are(
    client: httpx.Client, cast: Cast
) -> None:
    """The patient sees that someone they never shared with tried, and in what role, but
    not their name, account or address (the row keeps them for the operator)."""
    patient = cast.patient.patient_id
    for key in ("nutritionist_ungranted", "admin", "clinic_admin_same"):
        refused = client.get(f"/api/v1/patients/{patient}/readings", headers=cast[key].auth)
        assert refused.status_code == 404
    # Trying a patient who does not exist writes nothing anywhere.
    ghost = "00000000-0000-4000-8000-000000000000"
    client.get(f"/api/v1/patients/{ghost}/readings", headers=cast["admin"].auth)

    denied = [e for e in _log(client, cast) if e["outcome"] == "denied"]
    assert sorted(
        (e["actor_role"], e["actor_name"], e["actor_user_id"], e["client_address"]) for e in denied
    ) == [
        ("admin", STRANGER, None, None),
        ("clinic_admin", STRANGER, None, None),
        ("nutritionist", STRANGER, None, None),
    ]
    with psycopg.connect(cast.database_url) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM audit_log WHERE outcome = 'denied'"
            " AND actor_user_id IS NOT NULL AND client_address IS NOT NULL"
        ).fetchone()
        ghosts = conn.execute(
            "SELECT count(*) FROM audit_log WHERE patient_id = %s", (ghost,)
        ).fetchone()
    assert kept == (3,) and ghosts == (0,)
