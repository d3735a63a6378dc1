"""Erase (issue 18): the patient erases their record with their password. Their bridge is
disconnected and refused by the broker, their clinician gets the 404 of a patient who never
existed, no table holds their readings or personal details, the next research export leaves
them out, and a second erase answers as the first did. An erasure a stopped API left half
done is finished by the next one."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from psycopg import sql

from device.uplink import Uplink
from stack.local import Services
from tests.analytics.rows import Row, insert
from tests.api.conftest import PASSWORD, Cast, Person
from tests.mqtt_client import connect_answer

# The broker drops a deleted client within milliseconds; this bounds a loaded machine.
DISCONNECT_TIMEOUT_S = 10.0
# The job runner polls every 2 s; a resumed erasure is a few statements.
RESUME_TIMEOUT_S = 30.0
SERIAL = "SN-ERASE-77"
# Tables allowed to name the erased patient: the record that the erasure happened (ids only).
KEPT = {"erasures"}


def _erase(client: httpx.Client, person: Person, password: str) -> httpx.Response:
    return client.request(
        "DELETE",
        f"/api/v1/patients/{person.patient_id}",
        json={"password": password},
        headers=person.auth,
    )


def _tables_holding(database_url: str, needles: list[str]) -> dict[str, list[str]]:
    """Which tables hold any of these strings anywhere in a row (its text form), not as the
    tail of a longer word (`patient@...` is not `other_patient@...`)."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(database_url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'schema_migrations'"
            )
        ]
        for table in tables:
            for needle in needles:
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} t WHERE t::text ~* %s").format(
                        sql.Identifier(table)
                    ),
                    ("(^|[^a-z0-9_])" + re.escape(needle),),
                ).fetchone()
                if row is not None and row[0]:
                    found.setdefault(table, []).append(needle)
    return found


def _problem(response: httpx.Response) -> tuple[int, Any]:
    body = response.json()
    return response.status_code, {k: v for k, v in body.items() if k != "instance"}


def _pseudonyms(client: httpx.Client, admin: Person) -> set[str]:
    got = client.get("/api/v1/research/export", headers=admin.auth)
    assert got.status_code == 200, got.text
    return {p["pseudonym"] for p in got.json()["items"]}


def test_an_erased_patient_is_gone_for_everyone_and_everything(
    client: httpx.Client, cast: Cast, services: Services
) -> None:
    patient, clinician = cast.patient, cast["clinician_via_clinic"]
    pid = patient.patient_id
    insert(
        cast.database_url,
        pid,  # type: ignore[arg-type]
        [Row(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=i), 140.0) for i in range(6)],
        serial=SERIAL,
    )
    answer = client.post(
        f"/api/v1/patients/{pid}/bridges", json={"name": "home-erase"}, headers=patient.auth
    )
    assert answer.status_code == 201, answer.text
    creds = answer.json()
    bridge_id = creds["bridge_id"]
    url = services.url(creds["mqtt_username"], creds["mqtt_password"])
    display = client.post(
        f"/api/v1/patients/{pid}/displays", json={"label": "bedside"}, headers=patient.auth
    )
    assert display.status_code == 201, display.text
    shown = display.json()
    display_url = services.url(shown["mqtt_username"], shown["mqtt_password"])
    assert str(connect_answer(display_url, shown["mqtt_username"])) == "Success"
    opted = client.patch(
        f"/api/v1/patients/{pid}", json={"research_opt_in": True}, headers=patient.auth
    )
    assert opted.status_code == 200
    with psycopg.connect(cast.database_url) as conn:
        conn.execute(
            "INSERT INTO webhook_endpoints (patient_id, url, secret)"
            " VALUES (%s, 'https://hooks.example.org/erase', 'shh')",
            (pid,),
        )
        row = conn.execute(
            "SELECT research_pseudonym::text FROM patients WHERE id = %s", (pid,)
        ).fetchone()
    assert row is not None
    pseudonym = row[0]
    assert pseudonym in _pseudonyms(client, cast["admin"])
    seen = client.get(f"/api/v1/patients/{pid}/readings", headers=clinician.auth)
    assert seen.status_code == 200 and len(seen.json()["items"]) == 6

    disconnected = threading.Event()
    with Uplink(url, bridge_id) as uplink:
        uplink.client.on_disconnect = lambda *_args: disconnected.set()
        refused = _erase(client, patient, "not my password at all")
        assert refused.status_code == 403, refused.text
        assert not disconnected.is_set()
        assert client.get(f"/api/v1/patients/{pid}", headers=patient.auth).status_code == 200

        erased = _erase(client, patient, PASSWORD)
        assert erased.status_code == 200, erased.text
        assert disconnected.wait(DISCONNECT_TIMEOUT_S), "the broker kept the bridge connected"
    assert str(connect_answer(url, bridge_id)) == "Not authorized"
    assert str(connect_answer(display_url, shown["mqtt_username"])) == "Not authorized"
    body = erased.json()
    assert body["patient_id"] == str(pid) and body["finished_at"] is not None

    never = client.get(f"/api/v1/patients/{uuid.uuid4()}/readings", headers=clinician.auth)
    gone = client.get(f"/api/v1/patients/{pid}/readings", headers=clinician.auth)
    assert never.status_code == 404
    assert _problem(gone) == _problem(never)

    held = _tables_holding(
        cast.database_url,
        [
            str(pid),
            str(patient.id),
            patient.email,
            "Patient patient",
            SERIAL,
            bridge_id,
            shown["mqtt_username"],
        ],
    )
    assert {t: n for t, n in held.items() if t not in KEPT} == {}
    assert set(held.get("erasures", [])) <= {str(pid), str(patient.id)}
    assert pseudonym not in _pseudonyms(client, cast["admin"])

    again = _erase(client, patient, PASSWORD)
    assert (again.status_code, again.json()) == (erased.status_code, body)
    # Anyone else still gets the 404 of a patient who never existed.
    other = client.request(
        "DELETE", f"/api/v1/patients/{pid}", json={"password": PASSWORD}, headers=clinician.auth
    )
    assert other.status_code == 404


def test_an_erasure_left_half_done_is_finished_by_the_running_api(
    client: httpx.Client, cast: Cast, services: Services
) -> None:
    other = cast["other_patient"]
    insert(
        cast.database_url,
        other.patient_id,  # type: ignore[arg-type]
        [Row(datetime(2026, 11, 2, tzinfo=UTC), 99.0)],
        serial="SN-HALF",
    )
    answer = client.post(
        f"/api/v1/patients/{other.patient_id}/bridges",
        json={"name": "home-half"},
        headers=other.auth,
    )
    assert answer.status_code == 201, answer.text
    creds = answer.json()
    url = services.url(creds["mqtt_username"], creds["mqtt_password"])
    with psycopg.connect(cast.database_url) as conn:
        # As a process that stopped after taking the request, before revoking anything.
        conn.execute(
            "INSERT INTO erasures (patient_id, user_id, request_id, keep_until)"
            " VALUES (%s, %s, 'crashed', now() + interval '1 day')",
            (other.patient_id, other.id),
        )
    deadline = time.monotonic() + RESUME_TIMEOUT_S
    while True:
        with psycopg.connect(cast.database_url) as conn:
            row = conn.execute(
                "SELECT finished_at IS NOT NULL,"
                " (SELECT count(*) FROM readings WHERE patient_id = %s)"
                " FROM erasures WHERE patient_id = %s",
                (other.patient_id, other.patient_id),
            ).fetchone()
        assert row is not None
        if row[0]:
            break
        assert time.monotonic() < deadline, "the erasure was not resumed"
        time.sleep(0.1)
    assert row[1] == 0
    assert str(connect_answer(url, creds["bridge_id"])) == "Not authorized"
    again = _erase(client, other, PASSWORD)
    assert again.status_code == 200 and again.json()["finished_at"] is not None
