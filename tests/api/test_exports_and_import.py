"""Exports of a demo patient's real readings (FHIR validated with fhir.resources, Open
mHealth, CSV), the de-identified research export, and CSV import through ingest's path."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import psycopg
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from core.contract import MeterInfo, ReadingsBatch, readings_topic
from core.intake import DecodedBatch, decode_bridge_message, write
from stack.data import shipped
from stack.demo import DEMO_PATIENTS, demo_readings
from tests.api.conftest import Cast

DEMO = DEMO_PATIENTS[0]
SHANGHAI = ZoneInfo("Asia/Shanghai")
IGLU_FILE = ("iglu", "example_data_5_subject.csv")  # in the shipped data (stack/data)


def _store_demo_readings(cast: Cast) -> int:
    """The demo patient's real fingersticks, decoded and stored as ingest would, from the
    patient's own bridge and claimed meter."""
    with psycopg.connect(cast.database_url) as conn:
        conn.execute(
            "INSERT INTO meters (patient_id, serial, claimed_at) VALUES (%s, %s, now())",
            (cast.patient.patient_id, DEMO.meter_serial),
        )
        conn.execute(
            "INSERT INTO bridges (id, patient_id) VALUES (%s, %s)",
            (DEMO.bridge_id, cast.patient.patient_id),
        )
        conn.execute(
            "UPDATE patients SET display_name = %s, timezone = 'Asia/Shanghai' WHERE id = %s",
            (DEMO.name, cast.patient.patient_id),
        )
        conn.commit()
        wire = demo_readings(DEMO, datetime.now(SHANGHAI).date())
        message = ReadingsBatch(
            bridge_id=DEMO.bridge_id, meter=MeterInfo(serial=DEMO.meter_serial), readings=wire
        )
        decoded = decode_bridge_message(readings_topic(DEMO.bridge_id), message.to_json())
        assert isinstance(decoded, DecodedBatch) and not decoded.rejected
        write(conn, [decoded], [])
    return len(wire)


def test_the_fhir_export_of_a_demo_patient_validates(client: httpx.Client, cast: Cast) -> None:
    count = _store_demo_readings(cast)
    response = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/exports/fhir",
        headers=cast["clinician_via_clinic"].auth,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    document = response.json()
    bundle = Bundle.model_validate(document)  # R4B: R4's Bundle and Observation, unchanged
    observations = [
        e.resource for e in bundle.entry or [] if e.resource.__resource_type__ == "Observation"
    ]
    assert len(observations) == count
    for entry in document["entry"]:
        if entry["resource"]["resourceType"] == "Observation":
            obs = Observation.model_validate(entry["resource"])
            assert obs.code.coding[0].system == "http://loinc.org"
            assert obs.code.coding[0].code == "41653-7"  # fingersticks, not CGM
            assert obs.valueQuantity.system == "http://unitsofmeasure.org"
            assert obs.valueQuantity.code == "mg/dL"
            assert obs.device.reference.startswith("urn:uuid:")
    devices = [
        e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == "Device"
    ]
    assert [d["serialNumber"] for d in devices] == [DEMO.meter_serial]
    meals = {
        ext["valueCode"]
        for e in document["entry"]
        for ext in e["resource"].get("extension", [])
        if ext["url"].endswith("meal-context")
    }
    assert meals & {"before_meal", "after_meal", "fasting"}


def test_csv_and_open_mhealth_exports_carry_every_reading(client: httpx.Client, cast: Cast) -> None:
    count = _store_demo_readings(cast)
    base = f"/api/v1/patients/{cast.patient.patient_id}/exports"
    auth = cast.patient.auth
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/readings.csv", headers=auth).text)))
    assert len(rows) == count
    assert {r["device"] for r in rows} == {DEMO.meter_serial}
    omh = client.get(f"{base}/openmhealth", params={"unit": "mmol/L"}, headers=auth).json()
    assert len(omh["items"]) == count
    point = omh["items"][0]
    assert point["header"]["schema_id"] == {
        "namespace": "omh",
        "name": "blood-glucose",
        "version": "4.0",
    }
    assert point["body"]["blood_glucose"]["unit"] == "mmol/L"
    assert point["body"]["specimen_source"] == "capillary blood"
    first_mg_dl = float(rows[0]["value"])
    assert abs(point["body"]["blood_glucose"]["value"] * 18.016 - first_mg_dl) < 0.2


def test_the_research_export_is_de_identified_and_only_of_those_who_opted_in(
    client: httpx.Client, cast: Cast
) -> None:
    _store_demo_readings(cast)
    patient = cast.patient
    opted = client.patch(
        f"/api/v1/patients/{patient.patient_id}",
        json={"research_opt_in": True},
        headers=patient.auth,
    )
    assert opted.json()["research_opt_in"] is True
    response = client.get("/api/v1/research/export", headers=cast["admin"].auth)
    assert response.status_code == 200
    assert client.get("/api/v1/research/export", headers=patient.auth).status_code == 403
    body = response.json()
    assert len(body["items"]) == 1  # the other patient did not opt in
    text = response.text
    for secret in (
        DEMO.name,
        "Wang",
        patient.email,
        DEMO.meter_serial,
        str(patient.patient_id),
        str(patient.id),
    ):
        assert secret not in text
    with psycopg.connect(cast.database_url) as conn:
        real = conn.execute(
            "SELECT measured_at FROM readings WHERE patient_id = %s ORDER BY measured_at",
            (patient.patient_id,),
        ).fetchall()
    real_local = [r[0].astimezone(SHANGHAI).replace(tzinfo=None) for r in real]
    exported = sorted(datetime.fromisoformat(r["local_time"]) for r in body["items"][0]["readings"])
    assert len(exported) == len(real_local)
    real_dates = {t.date() for t in real_local}
    assert not real_dates & {t.date() for t in exported}  # no real date
    shifts = {e - r for e, r in zip(exported, real_local, strict=True)}
    assert len(shifts) == 1  # one shift per patient...
    (shift,) = shifts
    assert shift.seconds == 0 and shift.microseconds == 0  # ...of whole days: times of day stay


def test_a_csv_import_goes_through_ingest_validation_and_dedupe(
    client: httpx.Client, cast: Cast
) -> None:
    patient = cast.patient
    url = f"/api/v1/patients/{patient.patient_id}/imports"
    content = shipped(*IGLU_FILE).read_bytes()
    wanted = sum(1 for r in csv.DictReader(io.StringIO(content.decode())) if r["id"] == "Subject 2")
    form = {"subject": "Subject 2", "source": "cgm", "tz": "America/New_York"}
    first = client.post(url, files={"file": ("iglu.csv", content)}, data=form, headers=patient.auth)
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == wanted
    again = client.post(url, files={"file": ("iglu.csv", content)}, data=form, headers=patient.auth)
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == wanted

    bad = client.post(
        url,
        files={"file": ("bad.csv", b"id,time,gl\nS,2020-01-01 00:00:00,0\n")},
        headers=patient.auth,
    )
    assert bad.status_code == 422 and "plausible" in bad.json()["detail"]
    page = client.get(
        f"/api/v1/patients/{patient.patient_id}/exports/fhir", headers=patient.auth
    ).json()
    codes = {
        e["resource"]["code"]["coding"][0]["code"]
        for e in page["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }
    assert codes == {"99504-3"}  # imported as CGM
    with psycopg.connect(cast.database_url) as conn:
        row = conn.execute(
            "SELECT count(*), min(measured_at) FROM readings WHERE patient_id = %s",
            (patient.patient_id,),
        ).fetchone()
    assert row is not None and row[0] == wanted
    assert row[1] < datetime(2020, 1, 1, tzinfo=UTC)
    assert json.dumps(first.json())  # a plain JSON result
