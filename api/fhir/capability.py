"""`GET /metadata`: the CapabilityStatement, saying what this server supports and how it
treats what the guide asks receivers to document (conditional create, identifiers, dedupe,
the meter mapping, HI / LO)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from core.fhir_cgm import CGM_DATA_RECEIVER, SUBMIT_CGM_BUNDLE, Loinc, Profile

FHIR_VERSION: Final = "4.0.1"
SMART_SECURITY: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"

SUBMISSION: Final = (
    "POST [base]/$submit-cgm-bundle takes a cgm-data-submission-bundle (a transaction "
    "Bundle, or Parameters with it as `resource`) about ONE patient the client's clinic has a "
    "'readings' grant from, and needs system/Observation.c. Entries are processed one by one "
    "and answered in order in a transaction-response: only POST is accepted. Sensor readings "
    "(LOINC 99504-3 mg/dL, 105272-9 mmol/L) and meter readings (41653-7 mg/dL, 14743-9 "
    "mmol/L) are stored through glucobridge's one intake, with the same validation as every "
    "other source: 201 Created with Location Observation/{id} when new, 200 OK with the "
    "Location of the reading already held when it is a duplicate, 422 when the value is not "
    "plausible (10-1000 mg/dL) or the reading has no value (dataAbsentReason). Summaries, "
    "summary PDFs, Devices and the Patient are validated and answered 200 OK, not stored: "
    "summaries are computed here from the readings. "
    "Deduplication: a reading is identified by (patient, device, source, time, value), the "
    "device being the Device entry the Observation references (its serialNumber, else its "
    "first identifier) or, without one, the submitting client; so a second submission of "
    "the same readings stores nothing new, and a changed value at the same time is kept and "
    "flagged as a conflict. Conditional create: Bundle.entry.request.ifNoneExist is "
    "supported with the `identifier` search parameter only (identifier=system|value): 200 "
    "OK with its Location when one reading of this patient carries that identifier, 412 "
    "when several do, otherwise the reading is created; any other parameter answers 400. "
    "Client-supplied Observation.identifier values are kept with the reading and returned "
    "on read."
)
METER_MAPPING: Final = (
    "The guide covers CGM only. Fingerstick (meter) readings are Observations with LOINC "
    "41653-7 (Glucose [Mass/volume] in Capillary blood by Glucometer) in mg/dL or 14743-9 "
    "(Glucose [Moles/volume] in Capillary blood by Glucometer) in mmol/L, in the unit the "
    "meter measured, without a CGM profile. A result outside the meter's range (HI / LO) "
    "carries the meter's limit with valueQuantity.comparator '>' or '<' and the "
    "interpretation v3-ObservationInterpretation '>' / '<' (off scale high / low). CGM "
    "readings are cgm-sensor-reading profiles in the unit measured; nothing is converted."
)
SUMMARIES: Final = (
    "Observation?patient=&code=http://loinc.org|107931-8&date=geSTART&date=ltEND computes "
    "the cgm-summary of [START, END) (default: the last 14 days) from the patient's CGM "
    "readings exactly as GET /api/v1/patients/{id}/trends does, and returns it with its six "
    "members (search.mode include); needs the 'trends' grant. Read back by id, a summary is "
    "recomputed. DiagnosticReport?patient=&code=107931-8 returns the same period as a "
    "cgm-summary-pdf."
)


def capability_statement(base: str, now: datetime) -> dict[str, Any]:
    summary_profiles = [
        Profile.SUMMARY,
        Profile.MEAN_MASS,
        Profile.MEAN_MOLES,
        Profile.TIMES_IN_RANGES,
        Profile.GMI,
        Profile.CV,
        Profile.DAYS_OF_WEAR,
        Profile.SENSOR_ACTIVE,
        Profile.SENSOR_MASS,
        Profile.SENSOR_MOLES,
    ]
    patient_param = {
        "name": "patient",
        "type": "reference",
        "documentation": "required: the one patient searched (Patient/{id})",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.date().isoformat(),
        "publisher": "glucobridge",
        "kind": "instance",
        "instantiates": [CGM_DATA_RECEIVER],
        "software": {"name": "glucobridge"},
        "implementation": {"description": "glucobridge FHIR endpoint", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": METER_MAPPING,
                "security": {
                    "service": [{"coding": [{"system": SMART_SECURITY, "code": "SMART-on-FHIR"}]}],
                    "description": (
                        "SMART Backend Services: client_credentials with a private_key_jwt "
                        "assertion (RS384 or ES384) at the token_endpoint named in "
                        "[base]/.well-known/smart-configuration; scopes system/Patient.rs, "
                        "system/Observation.rs, system/Observation.c, system/Device.rs, "
                        "system/DiagnosticReport.rs. A client sees the patients who granted "
                        "its clinic access, while the grant is in force; every access is in "
                        "the patient's access log."
                    ),
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}],
                        "documentation": "id, identifier and name; any grant in force",
                    },
                    {
                        "type": "Observation",
                        "supportedProfile": [p.value for p in summary_profiles],
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "documentation": SUMMARIES,
                        "searchParam": [
                            patient_param,
                            {
                                "name": "code",
                                "type": "token",
                                "documentation": (
                                    f"{Loinc.SENSOR_MASS}, {Loinc.SENSOR_MOLES}, "
                                    f"{Loinc.METER_MASS}, {Loinc.METER_MOLES}, "
                                    f"{Loinc.SUMMARY}; without it, every reading"
                                ),
                            },
                            {
                                "name": "date",
                                "type": "date",
                                "documentation": "prefixes ge, gt, le, lt, eq; times need a zone",
                            },
                            {"name": "_count", "type": "number", "documentation": "1-1000"},
                        ],
                    },
                    {
                        "type": "Device",
                        "supportedProfile": [Profile.DEVICE.value],
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [patient_param],
                    },
                    {
                        "type": "DiagnosticReport",
                        "supportedProfile": [Profile.SUMMARY_PDF.value],
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            patient_param,
                            {"name": "code", "type": "token"},
                            {"name": "date", "type": "date"},
                        ],
                    },
                ],
                "operation": [
                    {
                        "name": "submit-cgm-bundle",
                        "definition": SUBMIT_CGM_BUNDLE,
                        "documentation": SUBMISSION,
                    }
                ],
            }
        ],
    }
