"""Acceptance 3: `$submit-cgm-bundle` (the guide's OperationDefinition submit-cgm-bundle and
its "Handling Duplicate Submissions", input/pagecontent/index.md) stores the readings of a
submission once, through the one intake, and answers each entry in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle

from core import fhir_cgm
from core.fhir_cgm import CgmSummaryValues, Member
from tests.fhir import ig_examples
from tests.fhir.conftest import FHIR, HospitalKey, World, access_token, register

READINGS = 288  # a day of 5-minute CGM
SERIAL = "ACME-CGM-77"
SUBMIT = f"{FHIR}/$submit-cgm-bundle"
ID_SYSTEM = "https://acme.example/cgm/readings"


@pytest.fixture
def submitter(http: httpx.Client, world: World) -> str:
    key = HospitalKey.generate("RS384")
    client = register(http, world.admin, world.clinic, key, name="Acme CGM cloud")
    return access_token(http, key, client, "system/Observation.crs")


def _post(http: httpx.Client, token: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(
        SUBMIT,
        json=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
    )


def _entry(resource: dict[str, Any], full_url: str | None = None, **request: Any) -> dict[str, Any]:
    return {
        "fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def _reading(patient: uuid.UUID, at: datetime, value: float, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "99504-3"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valueQuantity": {
            "value": value,
            "unit": "mg/dl",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
        "device": {"reference": "urn:uuid:device"},
        **extra,
    }


def _day(patient: uuid.UUID) -> tuple[dict[str, Any], list[float]]:
    """A submission bundle: the sensor, a day of readings, their summary with its members."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    values = [float(90 + (i * 7) % 120) for i in range(READINGS)]
    # As the guide's cgmDeviceExample: no Device.patient (the readings name the patient).
    device = {
        "resourceType": "Device",
        "identifier": [{"system": "https://acme.example/devices", "value": "77"}],
        "deviceName": [{"name": "Acme CGM System", "type": "user-friendly-name"}],
        "serialNumber": SERIAL,
    }
    entries = [_entry(device, "urn:uuid:device")]
    entries += [
        _entry(_reading(patient, start + timedelta(minutes=5 * i), v)) for i, v in enumerate(values)
    ]
    summary_values = CgmSummaryValues(
        start=start,
        end=start + timedelta(days=1),
        unit=fhir_cgm.Unit.MG_DL,
        mean=sum(values) / len(values),
        pct_very_low=0.0,
        pct_low=0.0,
        pct_in_range=90.0,
        pct_high=10.0,
        pct_very_high=0.0,
        gmi_pct=7.1,
        cv_pct=25.0,
        days_of_wear=1,
        sensor_active_pct=100.0,
    )
    ids: dict[Member | None, str] = {None: "sum", **{m: m.value for m in Member}}
    summary = fhir_cgm.cgm_summary(summary_values, f"Patient/{patient}", ids)
    entries += [_entry(r, f"https://acme.example/Observation/{r['id']}") for r in summary]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": datetime.now(UTC).isoformat(),
        "entry": entries,
    }
    return bundle, values


def _stored(world: World) -> list[tuple[float, str]]:
    with psycopg.connect(world.database_url) as conn:
        return [
            (float(r[0]), str(r[1]))
            for r in conn.execute(
                "SELECT value, device FROM counted_readings WHERE patient_id = %s"
                " ORDER BY measured_at",
                (world.patient_id,),
            )
        ]


def _statuses(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "transaction-response"
    return [e["response"]["status"] for e in body["entry"]]


def test_a_submission_is_stored_once_and_answered_entry_by_entry(
    http: httpx.Client, world: World, submitter: str
) -> None:
    bundle, values = _day(world.patient_id)
    first = _post(http, submitter, bundle)
    statuses = _statuses(first)
    assert len(statuses) == len(bundle["entry"]) == 1 + READINGS + 7
    assert statuses[0] == "200 OK"  # the Device: acknowledged, recorded with its readings
    assert statuses[1 : 1 + READINGS] == ["201 Created"] * READINGS
    assert statuses[1 + READINGS :] == ["200 OK"] * 7  # the summary and members: not stored
    assert _stored(world) == [(v, SERIAL) for v in values]
    locations = [e["response"]["location"] for e in first.json()["entry"][1 : 1 + READINGS]]
    assert len(set(locations)) == READINGS

    again = _post(http, submitter, bundle)
    assert _statuses(again)[1 : 1 + READINGS] == ["200 OK"] * READINGS
    assert [e["response"]["location"] for e in again.json()["entry"][1 : 1 + READINGS]] == (
        locations
    )
    assert _stored(world) == [(v, SERIAL) for v in values]  # nothing new

    # What was stored reads back, at its Location, as the guide's sensor reading.
    read = http.get(f"{FHIR}/{locations[0]}", headers={"Authorization": f"Bearer {submitter}"})
    assert read.status_code == 200
    assert read.json()["valueQuantity"]["value"] == values[0]
    assert read.json()["meta"]["profile"] == [fhir_cgm.Profile.SENSOR_MASS.value]
    # The device is the patient's, claimed by the submission.
    with psycopg.connect(world.database_url) as conn:
        row = conn.execute(
            "SELECT source, claimed_at IS NOT NULL FROM meters WHERE patient_id = %s"
            " AND serial = %s",
            (world.patient_id, SERIAL),
        ).fetchone()
    assert row == ("cgm", True)


def test_bad_entries_are_answered_alone_and_kept_visible(
    http: httpx.Client, world: World, submitter: str
) -> None:
    patient = world.patient_id
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    good = _reading(patient, at, 101.0)
    bogus = _reading(patient, at + timedelta(minutes=5), 102.0)
    bogus["code"]["coding"][0]["code"] = "99999-9"
    impossible = _reading(patient, at + timedelta(minutes=10), 2000.0)
    no_value = _reading(patient, at + timedelta(minutes=15), 103.0)
    no_value.pop("valueQuantity")
    no_value["dataAbsentReason"] = {"text": "sensor warm-up"}
    someone_else = _reading(world.stranger_id, at, 104.0)
    put = _reading(patient, at + timedelta(minutes=20), 105.0)
    entries = [
        _entry(good),
        _entry(bogus),
        _entry(impossible),
        _entry(no_value),
        {**_entry(put), "request": {"method": "PUT", "url": "Observation/x"}},
        _entry(
            {"resourceType": "MedicationRequest", "subject": {"reference": f"Patient/{patient}"}}
        ),
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": at.isoformat(),
        "entry": entries,
    }
    statuses = _statuses(_post(http, submitter, bundle))
    assert statuses == [
        "201 Created",
        "400 Bad Request",
        "422 Unprocessable Entity",
        "422 Unprocessable Entity",
        "400 Bad Request",
        "400 Bad Request",
    ]
    assert _stored(world) == [(101.0, f"fhir-client-{_client_of(world)}")]
    # The impossible value is kept where the patient and an admin can see it.
    with psycopg.connect(world.database_url) as conn:
        letters = conn.execute(
            "SELECT reason FROM dead_letters WHERE patient_id = %s", (patient,)
        ).fetchall()
    assert len(letters) == 1 and "plausible" in letters[0][0]
    # A submission that names two patients is refused whole.
    mixed = {**bundle, "entry": [_entry(good), _entry(someone_else)]}
    response = _post(http, submitter, mixed)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def _client_of(world: World) -> uuid.UUID:
    with psycopg.connect(world.database_url) as conn:
        row = conn.execute("SELECT id FROM fhir_clients").fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


def test_conditional_create_by_identifier(http: httpx.Client, world: World, submitter: str) -> None:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    identifier = [{"system": ID_SYSTEM, "value": "r-1"}]
    condition = f"identifier={ID_SYSTEM}|r-1"
    first = _reading(world.patient_id, at, 120.0, identifier=identifier)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": at.isoformat(),
        "entry": [_entry(first, ifNoneExist=condition)],
    }
    created = _post(http, submitter, bundle)
    assert _statuses(created) == ["201 Created"]
    location = created.json()["entry"][0]["response"]["location"]
    # The same identifier with a corrected value: the condition holds, nothing is created.
    corrected = _reading(world.patient_id, at, 125.0, identifier=identifier)
    again = _post(http, submitter, {**bundle, "entry": [_entry(corrected, ifNoneExist=condition)]})
    assert _statuses(again) == ["200 OK"]
    assert again.json()["entry"][0]["response"]["location"] == location
    assert [v for v, _ in _stored(world)] == [120.0]
    # The client's identifier is kept and returned.
    read = http.get(f"{FHIR}/{location}", headers={"Authorization": f"Bearer {submitter}"})
    assert {"system": ID_SYSTEM, "value": "r-1"} in read.json()["identifier"]
    # Conditions on other search parameters are not supported: 400, nothing created.
    other = _reading(world.patient_id, at + timedelta(minutes=5), 130.0)
    unsupported = _post(
        http, submitter, {**bundle, "entry": [_entry(other, ifNoneExist="code=99504-3")]}
    )
    assert _statuses(unsupported) == ["400 Bad Request"]
    assert len(_stored(world)) == 1


def test_the_guides_example_bundle_is_taken_as_a_parameter_too(
    http: httpx.Client, world: World, submitter: str
) -> None:
    bundle = ig_examples.submission_bundle(f"Patient/{world.patient_id}")
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "resource", "resource": bundle}],
    }
    statuses = _statuses(_post(http, submitter, wrapped))
    # The PDF, the summary and its six members acknowledged; the one sensor reading stored.
    assert statuses == ["200 OK"] * 8 + ["201 Created"]
    assert [v for v, _ in _stored(world)] == [120.0]


def test_who_may_submit(http: httpx.Client, world: World) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key, scopes=["system/Observation.rs"])
    reader = access_token(http, key, client, "system/Observation.rs")
    bundle, _ = _day(world.patient_id)
    refused = _post(http, reader, bundle)  # no system/Observation.c
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    writer_key = HospitalKey.generate()
    writer = register(http, world.admin, world.clinic, writer_key, name="Writer")
    token = access_token(http, writer_key, writer, "system/Observation.c")
    stranger, _ = _day(world.stranger_id)  # no grant from this patient
    assert _post(http, token, stranger).status_code == 403
    assert _stored(world) == []
    assert _post(http, token, {"resourceType": "Patient"}).status_code == 400
