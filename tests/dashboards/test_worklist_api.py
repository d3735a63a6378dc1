"""The worklist and the user's preferences through the API itself (no browser): paging,
the flagged-only and clinic filters, an audit row per listed patient, and language and unit
saved per user."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest

from stack.demo import DEMO_CLINIC, DEMO_PATIENTS
from stack.local import Services
from tests.dashboards.conftest import CGM_POOR, CGM_STEADY, CLINIC_PATIENTS, NO_DATA, Site

ALL = CLINIC_PATIENTS


@contextmanager
def _client(site: Site, key: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in as the demo user `key`."""
    login = site.logins[key]
    with httpx.Client(base_url=site.base, timeout=60) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": login.email, "password": login.password}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


@pytest.fixture
def clinician(site: Site) -> Iterator[httpx.Client]:
    with _client(site, "clinician") as client:
        yield client


def test_worklist_pages_and_filters(clinician: httpx.Client, services: Services) -> None:
    whole = clinician.get("/api/v1/dashboards/worklist").json()
    assert whole["total"] == ALL and whole["pages"] == 1 and whole["not_ranked"] == 0
    ranked = [item["patient_id"] for item in whole["items"]]
    assert ranked.index(str(CGM_POOR)) < ranked.index(str(CGM_STEADY))
    size = 3
    count = -(-ALL // size)
    pages = [
        clinician.get("/api/v1/dashboards/worklist", params={"size": size, "page": n}).json()
        for n in range(1, count + 2)
    ]
    assert {p["pages"] for p in pages} == {count}
    assert pages[-1]["items"] == []  # past the last page
    assert [i["patient_id"] for p in pages for i in p["items"]] == ranked
    flagged = clinician.get("/api/v1/dashboards/worklist", params={"flagged": True}).json()
    assert str(CGM_STEADY) not in {i["patient_id"] for i in flagged["items"]}
    assert {str(CGM_POOR), str(NO_DATA)} <= {i["patient_id"] for i in flagged["items"]}
    assert all(i["flagged"] for i in flagged["items"])
    assert whole["clinics"] == [{"id": str(DEMO_CLINIC), "name": "Demo Clinic"}]
    in_clinic = clinician.get("/api/v1/dashboards/worklist", params={"clinic": DEMO_CLINIC})
    assert in_clinic.json()["total"] == ALL
    elsewhere = clinician.get("/api/v1/dashboards/worklist", params={"clinic": uuid.uuid4()})
    assert elsewhere.json()["total"] == 0
    # Each look at the list leaves one audit row per patient it read.
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE patient_id = %s AND action = 'clinician_worklist'"
            " AND outcome = 'allowed'",
            (CGM_POOR,),
        ).fetchone()
    assert row is not None and row[0] >= 1 + len(pages) + 1 + 1


def test_a_patient_sees_only_themself(site: Site) -> None:
    with _client(site, DEMO_PATIENTS[1].key) as client:
        items = client.get("/api/v1/dashboards/worklist").json()["items"]
    assert [i["patient_id"] for i in items] == [str(DEMO_PATIENTS[1].id)]


def test_language_and_unit_are_saved_per_user(site: Site) -> None:
    with _client(site, "nutritionist") as client:
        saved = client.patch("/api/v1/users/me", json={"language": "zh-CN", "unit": "mmol/L"})
        assert saved.status_code == 200
        assert (saved.json()["language"], saved.json()["unit"]) == ("zh-CN", "mmol/L")
        kept = client.patch("/api/v1/users/me", json={"unit": "mg/dL"}).json()
        assert (kept["language"], kept["unit"]) == ("zh-CN", "mg/dL")
        refused = client.patch("/api/v1/users/me", json={"language": "fr"})
        assert refused.status_code == 422
        assert client.get("/api/v1/users/me").json()["language"] == "zh-CN"


def test_an_export_without_a_unit_uses_the_saved_one(site: Site) -> None:
    path = f"/api/v1/patients/{DEMO_PATIENTS[0].id}/exports/readings.csv"
    with _client(site, "clinician") as client:
        before = client.get(path).text.splitlines()
        assert client.patch("/api/v1/users/me", json={"unit": "mmol/L"}).status_code == 200
        after = client.get(path).text.splitlines()
        named = client.get(path, params={"unit": "mg/dL"}).text.splitlines()
    assert before[0].startswith("measured_at"), before[:2]
    column = before[0].split(",").index("unit")
    assert {row.split(",")[column] for row in before[1:]} == {"mg/dL"}
    assert {row.split(",")[column] for row in after[1:]} == {"mmol/L"}
    assert named == before  # a unit the request names wins
