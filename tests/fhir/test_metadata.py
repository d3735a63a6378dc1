"""The CapabilityStatement a CGM Data Receiver must publish (CGM guide, input/pagecontent/
index.md: "SHALL advertise support for CGM Data Submission by including
http://hl7.org/fhir/uv/cgm/CapabilityStatement/cgm-data-receiver in their
CapabilityStatement.instantiates" and "SHALL document ... conditional create ...
deduplication"), and errors as OperationOutcomes (FHIR R4 http.html)."""

from __future__ import annotations

import httpx
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from core.fhir_cgm import Profile
from tests.fhir.conftest import FHIR, HospitalKey, World, access_token, register


def test_the_capability_statement_instantiates_the_cgm_data_receiver(http: httpx.Client) -> None:
    response = http.get(f"{FHIR}/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["instantiates"] == [
        "http://hl7.org/fhir/uv/cgm/CapabilityStatement/cgm-data-receiver"
    ]
    (rest,) = statement["rest"]
    (operation,) = rest["operation"]
    assert operation["definition"] == (
        "http://hl7.org/fhir/uv/cgm/OperationDefinition/submit-cgm-bundle"
    )
    for documented in ("ifNoneExist", "identifier=system|value", "Deduplication", "412"):
        assert documented in operation["documentation"]
    for documented in ("41653-7", "14743-9", "comparator"):
        assert documented in rest["documentation"]
    observation = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert Profile.SENSOR_MASS.value in observation["supportedProfile"]
    assert Profile.SUMMARY.value in observation["supportedProfile"]


# (path, status): every one answered with an OperationOutcome.
BAD_REQUESTS = [
    ("/Observation?patient=Patient/{patient}&date=2026-11-01T00:00:00", 400),  # no zone
    ("/Observation?patient=Patient/{patient}&date=sa2026-11-01", 400),
    ("/Observation?patient=Patient/{patient}&_count=5000", 400),
    ("/Observation?patient=Patient/{patient}&_cursor=bm9wZQ", 400),
    ("/Observation", 400),  # no patient: system-wide search is not offered
    ("/Observation/not-a-reading", 404),
    ("/Medication", 404),
]


def test_errors_are_operation_outcomes(http: httpx.Client, world: World) -> None:
    key = HospitalKey.generate()
    client = register(http, world.admin, world.clinic, key)
    token = access_token(http, key, client, "system/Observation.rs")
    for path, status in BAD_REQUESTS:
        response = http.get(
            FHIR + path.format(patient=world.patient_id),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"].startswith("application/fhir+json")
        OperationOutcome.model_validate(response.json())
