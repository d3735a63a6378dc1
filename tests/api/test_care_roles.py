"""Roles that match the clinic (issue 11): who may change the care plan, who signs an
acknowledgement, whom a clinic grant reaches, and what a clinic admin may do."""

from __future__ import annotations

import uuid

import httpx
import psycopg

from tests.api.conftest import Cast, Person

THRESHOLDS = {"unit": "mg/dL", "low": 75, "very_low": 55, "high": 200}


def _thresholds(client: httpx.Client, cast: Cast, who: Person, **extra: object) -> httpx.Response:
    return client.put(
        f"/api/v1/patients/{cast.patient.patient_id}/alert-thresholds",
        json={**THRESHOLDS, **extra},
        headers=who.auth,
    )


def _grant(client: httpx.Client, cast: Cast, **body: object) -> httpx.Response:
    return client.post(
        f"/api/v1/patients/{cast.patient.patient_id}/grants", json=body, headers=cast.patient.auth
    )


def test_a_caregiver_with_the_alerts_scope_cannot_silence_alerts(
    client: httpx.Client, cast: Cast
) -> None:
    """Thresholds are the care plan: a caregiver or nutritionist who sees alerts reads them,
    and may not change them, whatever scopes they hold."""
    patient = cast.patient.patient_id
    caregiver = cast["nutritionist_ungranted"]  # granted alerts below, nothing else
    assert _grant(client, cast, grantee_user_id=str(caregiver.id), scopes=["alerts"]).is_success
    for who in (caregiver, cast["caregiver_granted"], cast["nutritionist_granted"]):
        assert _thresholds(client, cast, who, low=40, very_low=30).status_code == 404, who.key
        read = client.get(f"/api/v1/patients/{patient}/alert-thresholds", headers=who.auth)
        assert read.status_code == 200 and read.json() is None  # nothing was set
    # The care plan cannot even be granted to anyone but a clinician.
    refused = _grant(client, cast, grantee_user_id=str(caregiver.id), scopes=["care_plan"])
    assert refused.status_code == 422, refused.text


def test_thresholds_are_signed_by_whoever_sets_them_never_by_the_body(
    client: httpx.Client, cast: Cast
) -> None:
    clinician = cast["clinician_via_clinic"]  # through the clinic's grant, with care_plan
    by_clinician = _thresholds(client, cast, clinician, set_by="The Patient Themself")
    assert by_clinician.status_code == 200, by_clinician.text
    assert (by_clinician.json()["set_by"], by_clinician.json()["set_by_user_id"]) == (
        "Test clinician_via_clinic",
        str(clinician.id),
    )
    by_patient = _thresholds(client, cast, cast.patient, set_by="Dr. Somebody", high=180)
    assert by_patient.status_code == 200
    assert (by_patient.json()["set_by"], by_patient.json()["set_by_user_id"]) == (
        "Test patient",
        str(cast.patient.id),
    )


def test_an_acknowledgement_is_signed_by_the_signed_in_user(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient.patient_id
    with psycopg.connect(cast.database_url) as conn:
        row = conn.execute(
            "INSERT INTO alerts (patient_id, kind, level, subject, audience, delivery,"
            " started_at, last_at, extreme_mg_dl, readings)"
            " VALUES (%s, 'low', 1, '', 'patient', 'page', now(), now(), 60, 1) RETURNING id",
            (patient,),
        ).fetchone()
    assert row is not None
    caregiver = cast["caregiver_granted"]
    acked = client.post(
        f"/api/v1/patients/{patient}/alerts/{row[0]}/acknowledge",
        json={"by": "Dr. Chen"},
        headers=caregiver.auth,
    )
    assert acked.status_code == 200, acked.text
    assert (acked.json()["acknowledged_by"], acked.json()["acknowledged_by_user_id"]) == (
        "Test caregiver_granted",
        str(caregiver.id),
    )
    # A second acknowledgement does not rename who acknowledged first.
    again = client.post(
        f"/api/v1/patients/{patient}/alerts/{row[0]}/acknowledge", headers=cast.patient.auth
    )
    assert again.json()["acknowledged_by_user_id"] == str(caregiver.id)


def _new_clinic(client: httpx.Client, cast: Cast, name: str) -> str:
    made = client.post("/api/v1/organisations", json={"name": name}, headers=cast["admin"].auth)
    assert made.status_code == 201, made.text
    clinic: str = made.json()["id"]
    return clinic


def _add_member(client: httpx.Client, who: Person, clinic: str, member: Person) -> int:
    return client.post(
        f"/api/v1/organisations/{clinic}/members",
        json={"user_id": str(member.id)},
        headers=who.auth,
    ).status_code


def _reads(client: httpx.Client, cast: Cast, who: Person) -> bool:
    url = f"/api/v1/patients/{cast.patient.patient_id}/readings"
    status = client.get(url, headers=who.auth).status_code
    assert status in (200, 404)
    return status == 200


def _reaches(client: httpx.Client, cast: Cast, grant_id: str) -> set[str]:
    grants = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/grants", headers=cast.patient.auth
    ).json()["items"]
    (grant,) = [g for g in grants if g["id"] == grant_id]
    return {r["display_name"] for r in grant["reaches"]}


def test_a_clinic_grant_reaches_its_members_at_grant_time_unless_it_says_everyone(
    client: httpx.Client, cast: Cast
) -> None:
    admin = cast["admin"]
    clinic = _new_clinic(client, cast, "East Clinic")
    early, late = cast["nutritionist_readings_only"], cast["nutritionist_ungranted"]
    assert _add_member(client, admin, clinic, early) == 204

    members_grant = _grant(client, cast, grantee_organisation_id=clinic, scopes=["readings"])
    assert members_grant.status_code == 201, members_grant.text
    assert members_grant.json()["reach"] == "members"
    assert {r["display_name"] for r in members_grant.json()["reaches"]} == {
        "Test nutritionist_readings_only"
    }
    assert _add_member(client, admin, clinic, late) == 204
    # Joining later does not bring the patient along; the patient sees whom it reaches.
    assert not _reads(client, cast, late)
    assert _reaches(client, cast, members_grant.json()["id"]) == {"Test nutritionist_readings_only"}

    everyone = _grant(
        client, cast, grantee_organisation_id=clinic, scopes=["readings"], reach="clinic"
    )
    assert everyone.status_code == 201
    assert _reads(client, cast, late)
    assert _reaches(client, cast, everyone.json()["id"]) == {
        "Test nutritionist_readings_only",
        "Test nutritionist_ungranted",
    }
    # Leaving the clinic ends it, and coming back does not restore a members-only grant.
    removed = client.delete(
        f"/api/v1/organisations/{clinic}/members/{early.id}", headers=admin.auth
    )
    assert removed.status_code == 204
    assert _reaches(client, cast, members_grant.json()["id"]) == set()
    assert _add_member(client, admin, clinic, early) == 204
    assert _reaches(client, cast, members_grant.json()["id"]) == set()


def test_an_approved_clinic_request_reaches_the_members_at_approval(
    client: httpx.Client, cast: Cast
) -> None:
    clinic = _new_clinic(client, cast, "West Clinic")
    asker, later = cast["nutritionist_readings_only"], cast["nutritionist_ungranted"]
    assert _add_member(client, cast["admin"], clinic, asker) == 204
    asked = client.post(
        "/api/v1/access-requests",
        json={
            "patient_id": str(cast.patient.patient_id),
            "scopes": ["readings"],
            "organisation_id": clinic,
        },
        headers=asker.auth,
    )
    assert asked.status_code == 202
    assert _add_member(client, cast["admin"], clinic, later) == 204  # before the approval
    pending = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/grants",
        params={"status": "requested"},
        headers=cast.patient.auth,
    ).json()["items"]
    approved = client.post(
        f"/api/v1/patients/{cast.patient.patient_id}/grants/{pending[0]['id']}/approve",
        headers=cast.patient.auth,
    )
    assert approved.status_code == 200
    assert {r["display_name"] for r in approved.json()["reaches"]} == {
        "Test nutritionist_readings_only",
        "Test nutritionist_ungranted",
    }
    assert _reads(client, cast, later)


def test_a_clinic_admin_manages_members_but_creates_no_one_and_reads_nothing(
    client: httpx.Client, cast: Cast
) -> None:
    """The rule: clinic admins add and remove existing care professionals; only admins
    create accounts. A clinic admin cannot mint a clinician whose password they know, and a
    professional they add reaches no patient whose clinic grant predates them."""
    clinic_admin = cast["clinic_admin_same"]
    created = client.post(
        "/api/v1/users",
        json={
            "email": "puppet@clinic.example",
            "display_name": "Dr. Puppet",
            "password": "a long passphrase",
            "role": "clinician",
            "organisation_id": str(cast.clinic),
        },
        headers=clinic_admin.auth,
    )
    assert created.status_code == 403, created.text
    assert created.headers["content-type"] == "application/problem+json"
    with psycopg.connect(cast.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM users WHERE email = 'puppet@clinic.example'"
        ).fetchone()
    assert row == (0,)

    outsider = cast["nutritionist_ungranted"]  # an outside nutritionist
    assert _add_member(client, clinic_admin, str(cast.clinic), outsider) == 204
    assert not _reads(client, cast, outsider)  # the clinic's grant predates them
    assert not _reads(client, cast, clinic_admin)
    # Another clinic's admin manages nothing here.
    assert _add_member(client, cast["clinic_admin_other"], str(cast.clinic), outsider) == 403
    # The patient sees who the clinic's grant reaches: still only its clinician.
    grants = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/grants", headers=cast.patient.auth
    ).json()["items"]
    (clinic_grant,) = [g for g in grants if g["grantee_organisation_id"] == str(cast.clinic)]
    assert [r["display_name"] for r in clinic_grant["reaches"]] == ["Test clinician_via_clinic"]
    assert uuid.UUID(clinic_grant["reaches"][0]["user_id"]) == cast["clinician_via_clinic"].id
