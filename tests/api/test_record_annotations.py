"""Annotations (issue 18): a reading the patient marks "not mine" counts nowhere — trends,
days, AGP, alerts, the clinician's worklist, the pages, every export (CSV, FHIR, Open mHealth,
a Nightscout follower, the research export) — and counts again when the mark is undone; a
reading marked with the wrong time counts on its corrected local day.

The yardstick is a twin: a second patient holding the same readings minus the family
member's. With the mark in force, every view of the first patient equals the twin's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET
from tests.analytics.rows import Row, add_patient, insert

SERIAL = "meter-home"
# A reading the patient's brother took on the patient's meter: a level-2 low, so it moves
# every number it reaches (time below range, the worklist's flags, the AGP's low band).
FAMILY_VALUE = 41.0
MEALS = ("before_meal", "after_meal", "fasting")
# Keys that name the patient rather than describe their glucose.
NAMING = {"patient_id", "name", "display_name", "id", "patient", "subject", "reference"}


def _now() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _own_rows(now: datetime) -> list[Row]:
    start = now - timedelta(days=13)
    return [
        Row(start + timedelta(hours=5 * i), 90.0 + (i * 23) % 130, meal=MEALS[i % 3])
        for i in range(60)
    ]


def _token(conn: psycopg.Connection[Any], patient: uuid.UUID) -> str:
    row = conn.execute("SELECT user_id FROM patients WHERE id = %s", (patient,)).fetchone()
    assert row is not None
    return issue_access_token(DEV_JWT_SECRET, row[0], Role.PATIENT, datetime.now(UTC))


def _clinician(database: str, *patients: uuid.UUID) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES (%s, 'Dr Lin', 'clinician', 'no-login') RETURNING id",
            (f"{uuid.uuid4().hex}@example.org",),
        ).fetchone()
        assert row is not None
        for p in patients:
            conn.execute(
                "INSERT INTO grants (patient_id, grantee_user_id, scopes, status)"
                " VALUES (%s, %s, %s, 'active')",
                (p, row[0], ["readings", "trends", "alerts", "exports", "care_plan"]),
            )
    token = issue_access_token(DEV_JWT_SECRET, row[0], Role.CLINICIAN, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def _anonymous(value: Any) -> Any:
    """A response with the patient's identifiers taken out (the twin has other ones)."""
    if isinstance(value, dict):
        return {k: _anonymous(v) for k, v in value.items() if k not in NAMING}
    if isinstance(value, list):
        return [_anonymous(v) for v in value]
    return value


def _views(api: httpx.Client, patient: uuid.UUID, auth: dict[str, str]) -> dict[str, Any]:
    """What a patient's care team and the patient see of their glucose, by view."""
    end = _now() + timedelta(hours=1)
    period = {"start": (end - timedelta(days=14)).isoformat(), "end": end.isoformat()}
    found: dict[str, Any] = {}
    for name, path, params in [
        ("trends", "trends", period),
        ("agp", "agp", period),
        ("days", "days", {}),
        ("patient page", "dashboards/patient", {}),
        ("report page", "dashboards/report", {}),
        ("nutrition page", "dashboards/nutrition", {}),
    ]:
        got = api.get(f"/api/v1/patients/{patient}/{path}", params=params, headers=auth)
        assert got.status_code == 200, (name, got.text)
        found[name] = _anonymous(got.json())
    alerts = api.get(f"/api/v1/patients/{patient}/alerts", headers=auth)
    assert alerts.status_code == 200, alerts.text
    found["alerts"] = [(a["kind"], a["extreme_mg_dl"]) for a in alerts.json()["items"]]
    return found


def _worklist_row(api: httpx.Client, patient: uuid.UUID, auth: dict[str, str]) -> Any:
    got = api.get("/api/v1/dashboards/worklist", headers=auth)
    assert got.status_code == 200, got.text
    (row,) = [i for i in got.json()["items"] if i["patient_id"] == str(patient)]
    return _anonymous(row)


def _exports(api: httpx.Client, patient: uuid.UUID, auth: dict[str, str]) -> str:
    texts = []
    for path in ("exports/readings.csv", "exports/fhir", "exports/openmhealth", "readings"):
        got = api.get(f"/api/v1/patients/{patient}/{path}", headers=auth)
        assert got.status_code == 200, got.text
        if path != "readings":
            texts.append(got.text)
    return "\n".join(texts)


def _admin(database: str) -> dict[str, str]:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES (%s, 'Ops', 'admin', 'no-login') RETURNING id",
            (f"{uuid.uuid4().hex}@example.org",),
        ).fetchone()
    assert row is not None
    token = issue_access_token(DEV_JWT_SECRET, row[0], Role.ADMIN, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}


def _followed(api: httpx.Client, patient: uuid.UUID, auth: dict[str, str]) -> dict[str, str]:
    """The patient's Nightscout site, a follower token on it: where and how to follow."""
    site = api.post(f"/api/v1/patients/{patient}/nightscout-sites", json={}, headers=auth)
    assert site.status_code == 201, site.text
    token = api.post(
        f"/api/v1/patients/{patient}/nightscout-sites/{site.json()['id']}/tokens",
        json={"label": "Mum"},
        headers=auth,
    )
    assert token.status_code == 201, token.text
    return {"path": site.json()["path"], "token": token.json()["token"]}


def _elsewhere(
    api: httpx.Client, follow: dict[str, str], admin: dict[str, str]
) -> tuple[list[float], list[float]]:
    """The meter values a Nightscout follower and the research export get."""
    entries = api.get(
        follow["path"] + "entries/mbg.json",
        params={"count": 1000},
        headers={"api-secret": follow["token"]},
    )
    assert entries.status_code == 200, entries.text
    research = api.get("/api/v1/research/export", headers=admin)
    assert research.status_code == 200, research.text
    (opted_in,) = research.json()["items"]
    return (
        sorted(float(e["mbg"]) for e in entries.json()),
        sorted(r["mg_dl"] for r in opted_in["readings"]),
    )


@pytest.fixture
def twins(database: str, api: httpx.Client) -> tuple[uuid.UUID, uuid.UUID, datetime]:
    now = _now()
    rows = _own_rows(now)
    family_at = now - timedelta(days=2, hours=2, minutes=13)  # in Nightscout's 4-day window
    patient = add_patient(database, "Asia/Shanghai", name="Wang")
    twin = add_patient(database, "Asia/Shanghai", name="Wang")
    insert(
        database, patient, [*rows, Row(family_at, FAMILY_VALUE, meal="before_meal")], serial=SERIAL
    )
    insert(database, twin, rows, serial=SERIAL)
    with psycopg.connect(database) as conn:
        # The level-2 low the family reading raised, as the alerts worker records one.
        conn.execute(
            "INSERT INTO alerts (patient_id, kind, level, audience, delivery, started_at,"
            " last_at, extreme_mg_dl, readings) VALUES (%s, 'low', 2, 'patient', 'page',"
            " %s, %s, %s, 1)",
            (patient, family_at, family_at, FAMILY_VALUE),
        )
    return patient, twin, family_at


def _family_reading(
    api: httpx.Client, patient: uuid.UUID, auth: dict[str, str], at: datetime
) -> dict[str, Any]:
    got = api.get(f"/api/v1/patients/{patient}/readings", params={"limit": 1000}, headers=auth)
    assert got.status_code == 200, got.text
    (found,) = [r for r in got.json()["items"] if datetime.fromisoformat(r["measured_at"]) == at]
    return dict(found)


def test_a_reading_marked_not_mine_counts_nowhere_until_the_mark_is_undone(
    database: str, api: httpx.Client, twins: tuple[uuid.UUID, uuid.UUID, datetime]
) -> None:
    patient, twin, family_at = twins
    with psycopg.connect(database) as conn:
        me = {"Authorization": f"Bearer {_token(conn, patient)}"}
        them = {"Authorization": f"Bearer {_token(conn, twin)}"}
    clinician = _clinician(database, patient, twin)
    stamp = family_at.isoformat().replace("+00:00", "")
    follow, admin = _followed(api, patient, me), _admin(database)
    opted = api.patch(f"/api/v1/patients/{patient}", json={"research_opt_in": True}, headers=me)
    assert opted.status_code == 200, opted.text
    followed, researched = _elsewhere(api, follow, admin)
    assert FAMILY_VALUE in followed and FAMILY_VALUE in researched

    twin_views = _views(api, twin, them)
    twin_row = _worklist_row(api, twin, clinician)
    before = _views(api, patient, me)
    before_exports = _exports(api, patient, me)
    assert [k for k in before if before[k] == twin_views[k]] == [], "the family reading counts"
    assert _worklist_row(api, patient, clinician) != twin_row
    assert stamp in before_exports

    reading = _family_reading(api, patient, me, family_at)
    assert reading["excluded"] is False
    marked = api.post(
        f"/api/v1/patients/{patient}/readings/{reading['identity']}/annotations",
        json={"kind": "not_mine", "note": "my brother tried the meter"},
        headers=me,
    )
    assert marked.status_code == 201, marked.text

    assert _views(api, patient, me) == twin_views
    assert _worklist_row(api, patient, clinician) == twin_row
    assert stamp not in _exports(api, patient, me)
    assert _elsewhere(api, follow, admin) == (
        [v for v in followed if v != FAMILY_VALUE],
        [v for v in researched if v != FAMILY_VALUE],
    )
    # The logbook still shows it, as the patient marked it; the raw row is untouched.
    shown = _family_reading(api, patient, me, family_at)
    assert shown["excluded"] is True and shown["value"] == FAMILY_VALUE
    again = api.post(
        f"/api/v1/patients/{patient}/readings/{reading['identity']}/annotations",
        json={"kind": "not_mine"},
        headers=me,
    )
    assert again.status_code == 409

    undone = api.post(
        f"/api/v1/patients/{patient}/readings/annotations/{marked.json()['id']}/undo",
        headers=clinician,
    )
    assert undone.status_code == 200, undone.text
    assert _views(api, patient, me) == before
    assert _elsewhere(api, follow, admin) == (followed, researched)
    after_exports = _exports(api, patient, me)
    assert after_exports.count(stamp) == before_exports.count(stamp) > 0
    listed = api.get(f"/api/v1/patients/{patient}/readings/annotations", headers=me).json()
    (mark,) = listed["items"]
    assert mark["note"] == "my brother tried the meter" and mark["undone_at"] is not None
    # The patient sees who marked and who undid, in their access log.
    log = api.get(f"/api/v1/patients/{patient}/access-log", params={"limit": 500}, headers=me)
    assert log.status_code == 200, log.text
    actions = {(e["action"], e["actor_role"]) for e in log.json()["items"]}
    assert {("annotate_reading", "patient"), ("undo_annotation", "clinician")} <= actions


def test_a_bulk_exclusion_of_a_meter_between_two_instants(
    database: str, api: httpx.Client, twins: tuple[uuid.UUID, uuid.UUID, datetime]
) -> None:
    patient, twin, family_at = twins
    with psycopg.connect(database) as conn:
        me = {"Authorization": f"Bearer {_token(conn, patient)}"}
    excluded = api.post(
        f"/api/v1/patients/{patient}/readings/exclusions",
        json={
            "device": SERIAL,
            "start": (family_at - timedelta(minutes=1)).isoformat(),
            "end": (family_at + timedelta(minutes=1)).isoformat(),
            "note": "the week my brother stayed",
        },
        headers=me,
    )
    assert excluded.status_code == 201, excluded.text
    assert excluded.json()["marked"] == 1
    with psycopg.connect(database) as conn:
        them = {"Authorization": f"Bearer {_token(conn, twin)}"}
    assert _views(api, patient, me) == _views(api, twin, them)


def test_a_corrected_time_moves_the_reading_to_its_local_day(
    database: str, api: httpx.Client
) -> None:
    patient = add_patient(database, "Asia/Shanghai", api)
    # 23:30 on 1 May in Shanghai, as the meter's clock said; it was really 00:30 on 2 May.
    stored = datetime(2026, 5, 1, 15, 30, tzinfo=UTC)
    insert(database, patient, [Row(stored, 112.0)], serial=SERIAL)
    params = {"start_date": "2026-05-01", "end_date": "2026-05-02"}

    def readings_by_day() -> dict[str, int]:
        got = api.get(f"/api/v1/patients/{patient}/days", params=params)
        assert got.status_code == 200, got.text
        return {d["date"]: d["readings"] for d in got.json()["items"]}

    assert readings_by_day() == {"2026-05-01": 1, "2026-05-02": 0}
    (reading,) = api.get(f"/api/v1/patients/{patient}/readings").json()["items"]
    marked = api.post(
        f"/api/v1/patients/{patient}/readings/{reading['identity']}/annotations",
        json={"kind": "wrong_time", "corrected_at": "2026-05-02T00:30:00+08:00"},
    )
    assert marked.status_code == 201, marked.text
    assert readings_by_day() == {"2026-05-01": 0, "2026-05-02": 1}
    csv = api.get(f"/api/v1/patients/{patient}/exports/readings.csv").text
    assert "2026-05-01T16:30:00+00:00" in csv and "2026-05-01T15:30:00+00:00" not in csv
    (shown,) = api.get(f"/api/v1/patients/{patient}/readings").json()["items"]
    assert shown["measured_at"].startswith("2026-05-01T15:30:00")  # stored as it came
    assert shown["corrected_at"].startswith("2026-05-01T16:30:00")


def test_a_nutritionist_without_care_plan_cannot_mark(database: str, api: httpx.Client) -> None:
    patient = add_patient(database, "UTC")
    insert(database, patient, [Row(datetime(2026, 5, 1, 8, tzinfo=UTC), 100.0)], serial=SERIAL)
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES ('n@example.org', 'N', 'nutritionist', 'no-login') RETURNING id"
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO grants (patient_id, grantee_user_id, scopes, status)"
            " VALUES (%s, %s, %s, 'active')",
            (patient, row[0], ["readings", "care_plan"]),
        )
        identity = conn.execute("SELECT identity FROM readings").fetchone()
    assert identity is not None
    token = issue_access_token(DEV_JWT_SECRET, row[0], Role.NUTRITIONIST, datetime.now(UTC))
    got = api.post(
        f"/api/v1/patients/{patient}/readings/{identity[0]}/annotations",
        json={"kind": "not_mine"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert got.status_code == 404


def test_a_reading_marked_control_solution_is_counted_as_a_control_test(
    database: str, api: httpx.Client
) -> None:
    patient = add_patient(database, "Europe/Berlin", api)
    start = datetime(2026, 5, 1, 6, tzinfo=UTC)
    insert(
        database,
        patient,
        [Row(start + timedelta(hours=i), 100.0 + 10 * i) for i in range(4)],
        serial=SERIAL,
    )
    period = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}

    def trends() -> tuple[int, int]:
        got = api.get(f"/api/v1/patients/{patient}/trends", params=period)
        assert got.status_code == 200, got.text
        body = got.json()
        return body["source"]["control_excluded"], body["report"]["readings"]

    before = trends()
    (last, *_) = api.get(f"/api/v1/patients/{patient}/readings").json()["items"]
    marked = api.post(
        f"/api/v1/patients/{patient}/readings/{last['identity']}/annotations",
        json={"kind": "control_solution", "note": "the control bottle, not my finger"},
    )
    assert marked.status_code == 201, marked.text
    assert trends() == (before[0] + 1, before[1] - 1)
