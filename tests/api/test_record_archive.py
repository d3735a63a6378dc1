"""Take it all (issue 18): the patient's archive holds every item of their record — readings
of two sources (CSV and FHIR), marks, held records, alerts, grants, the access log, meters,
bridges, Nightscout sites, research consent — each file described in its README; and an
archive a stopped API left half built is built by the next one."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.analytics.rows import Row, insert
from tests.api.conftest import Cast, Person

# Building an archive of a few hundred rows takes well under a second; this bounds a hung
# job runner on a loaded machine, it is not a speed check.
ARCHIVE_TIMEOUT_S = 60.0
START = datetime(2026, 10, 1, tzinfo=UTC)


def wait_ready(client: httpx.Client, person: Person, archive_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + ARCHIVE_TIMEOUT_S
    seen = set()
    while True:
        got = client.get(
            f"/api/v1/patients/{person.patient_id}/archive/{archive_id}", headers=person.auth
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        seen.add(body["status"])
        if body["status"] in ("ready", "failed"):
            return body
        assert time.monotonic() < deadline, f"archive still {seen}"
        time.sleep(0.1)


def download(client: httpx.Client, person: Person, archive: dict[str, Any]) -> zipfile.ZipFile:
    got = client.get(archive["download"], headers=person.auth)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(got.content))


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    return json.loads(archive.read(name))


def _seed(client: httpx.Client, cast: Cast) -> dict[str, Any]:
    """A record with something in every part; returns what each part must hold."""
    patient = cast.patient
    pid = patient.patient_id
    assert pid is not None
    meter = [Row(START + timedelta(hours=6 * i), 100.0 + i) for i in range(8)]
    sensor = [
        Row(START + timedelta(minutes=5 * i), 120.0 + i % 7, sample_type="interstitial_fluid")
        for i in range(30)
    ]
    insert(cast.database_url, pid, meter, serial="SN-METER-9")
    insert(cast.database_url, pid, sensor, serial="CGM-SENSOR-4")
    with psycopg.connect(cast.database_url) as conn:
        identities = {str(r[0]) for r in conn.execute("SELECT identity FROM readings")}
        alert = conn.execute(
            "INSERT INTO alerts (patient_id, kind, level, audience, delivery, started_at,"
            " last_at, extreme_mg_dl, readings) VALUES (%s, 'low', 2, 'patient', 'history',"
            " %s, %s, 48, 1) RETURNING id",
            (pid, START, START),
        ).fetchone()
        held = conn.execute(
            "INSERT INTO held_records (patient_id, sender, device, reason, detail, raw_record,"
            " identity) VALUES (%s, 'home-1', 'SN-METER-9', 'nan', 'NaN value', %s,"
            " gen_random_uuid()) RETURNING id",
            (pid, bytes.fromhex("0b0100e40701")),
        ).fetchone()
        conn.execute(
            "INSERT INTO bridges (id, patient_id, label) VALUES ('home-archive-1', %s, 'hall')",
            (pid,),
        )
        conn.execute(
            "INSERT INTO dead_letters (topic, sender, payload, reason, patient_id)"
            " VALUES ('glucose/v1/bridges/home-archive-1/readings', 'home-archive-1', %s,"
            " 'not JSON', %s)",
            (b"\xff\xfe", pid),
        )
        grants = {
            str(r[0]) for r in conn.execute("SELECT id FROM grants WHERE patient_id = %s", (pid,))
        }
    assert alert is not None and held is not None
    site = client.post(f"/api/v1/patients/{pid}/nightscout-sites", json={}, headers=patient.auth)
    assert site.status_code == 201, site.text
    for opt_in in (True, False, True):
        changed = client.patch(
            f"/api/v1/patients/{pid}", json={"research_opt_in": opt_in}, headers=patient.auth
        )
        assert changed.status_code == 200, changed.text
    first = sorted(identities)[0]
    marked = client.post(
        f"/api/v1/patients/{pid}/readings/{first}/annotations",
        json={"kind": "note", "note": "after the run"},
        headers=patient.auth,
    )
    assert marked.status_code == 201, marked.text
    # The clinic's clinician looks at the trends: a row in the access log.
    looked = client.get(
        f"/api/v1/patients/{pid}/readings",
        headers={**cast["clinician_via_clinic"].auth, "X-Request-ID": "clinician-looked-1"},
    )
    assert looked.status_code == 200, looked.text
    return {
        "identities": identities,
        "counted": len(meter) + len(sensor),
        "alert": alert[0],
        "held": held[0],
        "grants": grants,
        "site": site.json()["id"],
        "annotation": marked.json()["id"],
    }


def test_the_archive_holds_every_item_of_the_record(client: httpx.Client, cast: Cast) -> None:
    patient = cast.patient
    expected = _seed(client, cast)
    asked = client.post(f"/api/v1/patients/{patient.patient_id}/archive", headers=patient.auth)
    assert asked.status_code == 202, asked.text
    assert asked.json()["status"] == "queued" and asked.json()["download"] is None
    ready = wait_ready(client, patient, asked.json()["id"])
    assert ready["status"] == "ready", ready
    assert ready["files_done"] == ready["files_total"]
    assert datetime.fromisoformat(ready["expires_at"]) - datetime.fromisoformat(
        ready["finished_at"]
    ) == timedelta(days=1)

    with download(client, patient, ready) as archive:
        names = set(archive.namelist())
        readme = archive.read("README.md").decode()
        assert all(f"| {name} |" in readme for name in names - {"README.md"})

        rows = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
        assert {r["identity"] for r in rows} == expected["identities"]
        assert {r["device"] for r in rows} == {"SN-METER-9", "CGM-SENSOR-4"}
        assert {r["source"] for r in rows} == {"meter", "cgm"}
        fhir = _json(archive, "readings.fhir.json")
        observations = [e for e in fhir["entry"] if e["resource"]["resourceType"] == "Observation"]
        assert len(observations) == expected["counted"]

        assert [a["id"] for a in _json(archive, "annotations.json")] == [expected["annotation"]]
        (held,) = _json(archive, "held_records.json")
        assert held["id"] == expected["held"] and held["raw_record_hex"] == "0b0100e40701"
        assert [a["id"] for a in _json(archive, "alerts.json")] == [expected["alert"]]
        (aside,) = _json(archive, "set_aside.json")
        assert (aside["reason"], aside["payload_hex"]) == ("not JSON", "fffe")
        grants = _json(archive, "grants.json")
        assert {g["id"] for g in grants} == expected["grants"]
        assert {g["status"] for g in grants} >= {"active", "revoked"}
        log = _json(archive, "access_log.json")
        looked = [e for e in log if e["request_id"] == "clinician-looked-1"]
        assert [(e["actor_user_id"], e["actor_name"]) for e in looked] == [
            (str(cast["clinician_via_clinic"].id), "Test clinician_via_clinic")
        ]
        assert {"annotate_reading", "request_archive"} <= {e["action"] for e in log}
        assert {m["serial"] for m in _json(archive, "meters.json")} == {
            "SN-METER-9",
            "CGM-SENSOR-4",
        }
        assert [b["id"] for b in _json(archive, "bridges.json")] == ["home-archive-1"]
        assert [s["id"] for s in _json(archive, "nightscout_sites.json")] == [expected["site"]]
        consent = _json(archive, "research_consent.json")
        assert [c["opted_in"] for c in consent] == [True, False, True]
        assert _json(archive, "profile.json")["email"] == patient.email
        everything = b"".join(archive.read(n) for n in names)
        assert b"uploader_sha" not in everything and b"token_sha1" not in everything

    # The patient reads in their access log that the archive was built and downloaded.
    log = client.get(
        f"/api/v1/patients/{patient.patient_id}/access-log",
        params={"limit": 500},
        headers=patient.auth,
    ).json()["items"]
    actions = {(e["action"], e["actor_kind"]) for e in log}
    assert {("archive_built", "system"), ("download_archive", "user")} <= actions
    # The download is the patient's alone, and it says when it is no longer there.
    other = client.get(ready["download"], headers=cast["clinician_via_clinic"].auth)
    assert other.status_code == 404
    with psycopg.connect(cast.database_url) as conn:
        conn.execute("UPDATE record_archives SET expires_at = now() - interval '1 second'")
    assert client.get(ready["download"], headers=patient.auth).status_code == 410


def test_an_archive_left_half_built_is_built_by_the_running_api(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient
    with psycopg.connect(cast.database_url) as conn:
        row = conn.execute(
            "INSERT INTO record_archives (patient_id, status, started_at, files_done)"
            " VALUES (%s, 'building', now() - interval '1 hour', 3) RETURNING id",
            (patient.patient_id,),
        ).fetchone()
    assert row is not None
    ready = wait_ready(client, patient, str(row[0]))
    assert ready["status"] == "ready", ready
    with download(client, patient, ready) as archive:
        assert "readings.csv" in archive.namelist()


def test_nobody_but_the_patient_asks_for_an_archive(client: httpx.Client, cast: Cast) -> None:
    pid = cast.patient.patient_id
    for key in ("clinician_via_clinic", "nutritionist_granted", "admin"):
        got = client.post(f"/api/v1/patients/{pid}/archive", headers=cast[key].auth)
        assert got.status_code == 404, (key, got.text)
    missing = client.get(
        f"/api/v1/patients/{pid}/archive/{uuid.uuid4()}", headers=cast.patient.auth
    )
    assert missing.status_code == 404
