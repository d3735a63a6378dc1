"""The HL7 CGM guide's own examples (hl7.fhir.uv.cgm 1.0.0), as the guide publishes them in
JSON: written here from their source, github.com/HL7/cgm input/fsh/examples.fsh, with the
fixed values their profiles add (input/fsh/profiles.fsh), e.g.
https://hl7.org/fhir/uv/cgm/Observation-cgmSensorReadingMassPerVolumeExample.json.html.
Only `subject` is a parameter: a receiver needs the patient it knows."""

from __future__ import annotations

import copy
from typing import Any

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
LAB = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory",
            }
        ]
    }
]
PERIOD = {"start": "2024-05-01", "end": "2024-05-31"}
PERCENT = {"unit": "%", "system": UCUM, "code": "%"}
# A one-page PDF, the base64 the guide's cgmSummaryPDFExample carries.
PDF_BASE64 = (
    "JVBERi0xLjAKJcK1wrYKCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nL1BhZ2VzIDIgMCBSPj4KZW5kb2JqCgoyIDAgb2Jq"
    "Cjw8L0tpZHNbMyAwIFJdL0NvdW50IDEvVHlwZS9QYWdlcy9NZWRpYUJveFswIDAgNTk1IDc5Ml0+PgplbmRvYmoKCjMg"
    "MCBvYmoKPDwvVHlwZS9QYWdlL1BhcmVudCAyIDAgUi9Db250ZW50cyA0IDAgUi9SZXNvdXJjZXM8PD4+Pj4KZW5kb2Jq"
    "Cgo0IDAgb2JqCjw8L0xlbmd0aCA1OD4+CnN0cmVhbQpxCkJUCi8gOTYgVGYKMSAwIDAgMSAzNiA2ODQgVG0KKEZISVIg"
    "Q0dNISkgVGoKRVQKUQoKZW5kc3RyZWFtCmVuZG9iagoKeHJlZgowIDUKMDAwMDAwMDAwMCA2NTUzNiBmIAowMDAwMDAw"
    "MDE2IDAwMDAwIG4gCjAwMDAwMDAwNjIgMDAwMDAgbiAKMDAwMDAwMDEzNiAwMDAwMCBuIAowMDAwMDAwMjA5IDAwMDAw"
    "IG4gCgp0cmFpbGVyCjw8L1NpemUgNS9Sb290IDEgMCBSPj4Kc3RhcnR4cmVmCjMxNgolJUVPRgoK"
)


def _observation(resource_id: str, code: str, subject: str, **rest: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "category": copy.deepcopy(LAB),
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": subject},
        **rest,
    }


def examples(subject: str = "Patient/patientExample") -> dict[str, dict[str, Any]]:
    """Every example of examples.fsh the submission bundle uses, by its id."""
    found = {
        "cgmSensorReadingMassPerVolumeExample": _observation(
            "cgmSensorReadingMassPerVolumeExample",
            "99504-3",
            subject,
            effectiveDateTime="2024-05-02T10:15:00Z",
            valueQuantity={"value": 120, "unit": "mg/dl", "system": UCUM, "code": "mg/dL"},
        ),
        "cgmSensorReadingMolesPerVolumeExample": _observation(
            "cgmSensorReadingMolesPerVolumeExample",
            "105272-9",
            subject,
            effectiveDateTime="2024-05-02T10:30:00Z",
            valueQuantity={"value": 6.7, "unit": "mmol/l", "system": UCUM, "code": "mmol/L"},
        ),
        "cgmSummaryMeanGlucoseMassPerVolumeExample": _observation(
            "cgmSummaryMeanGlucoseMassPerVolumeExample",
            "97507-8",
            subject,
            effectivePeriod=dict(PERIOD),
            valueQuantity={"value": 145, "unit": "mg/dl", "system": UCUM, "code": "mg/dL"},
        ),
        "cgmSummaryTimesInRangesExample": _observation(
            "cgmSummaryTimesInRangesExample",
            "106793-3",
            subject,
            effectivePeriod=dict(PERIOD),
            component=[
                {
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "valueQuantity": {"value": value, **PERCENT},
                }
                for code, value in (
                    ("104642-4", 3),
                    ("104641-6", 8),
                    ("97510-2", 65),
                    ("104640-8", 20),
                    ("104639-0", 4),
                )
            ],
        ),
        "cgmSummaryGMIExample": _observation(
            "cgmSummaryGMIExample",
            "97506-0",
            subject,
            effectivePeriod=dict(PERIOD),
            valueQuantity={"value": 6.8, **PERCENT},
        ),
        "cgmSummaryCoefficientOfVariationExample": _observation(
            "cgmSummaryCoefficientOfVariationExample",
            "104638-2",
            subject,
            effectivePeriod=dict(PERIOD),
            valueQuantity={"value": 34, **PERCENT},
        ),
        "cgmSummaryDaysOfWearExample": _observation(
            "cgmSummaryDaysOfWearExample",
            "104636-6",
            subject,
            effectivePeriod=dict(PERIOD),
            valueQuantity={"value": 28, "unit": "days", "system": UCUM, "code": "d"},
        ),
        "cgmSummarySensorActivePercentageExample": _observation(
            "cgmSummarySensorActivePercentageExample",
            "104637-4",
            subject,
            effectivePeriod=dict(PERIOD),
            valueQuantity={"value": 95, **PERCENT},
        ),
    }
    members = [
        "cgmSummaryMeanGlucoseMassPerVolumeExample",
        "cgmSummaryTimesInRangesExample",
        "cgmSummaryGMIExample",
        "cgmSummaryCoefficientOfVariationExample",
        "cgmSummaryDaysOfWearExample",
        "cgmSummarySensorActivePercentageExample",
    ]
    found["cgmSummaryExample"] = _observation(
        "cgmSummaryExample",
        "107931-8",
        subject,
        effectivePeriod=dict(PERIOD),
        hasMember=[{"reference": f"Observation/{m}"} for m in members],
    )
    found["cgmSummaryPDFExample"] = {
        "resourceType": "DiagnosticReport",
        "id": "cgmSummaryPDFExample",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
        ],
        "code": {"coding": [{"system": LOINC, "code": "107931-8"}]},
        "subject": {"reference": subject},
        "effectivePeriod": {"start": "2024-05-01", "end": "2024-05-14"},
        "issued": "2024-05-15T14:30:00Z",
        "result": [{"reference": "Observation/cgmSummaryExample"}],
        "presentedForm": [{"contentType": "application/pdf", "data": PDF_BASE64}],
    }
    found["cgmDeviceExample"] = {
        "resourceType": "Device",
        "id": "cgmDeviceExample",
        "identifier": [{"system": "http://acme.com/devices", "value": "456789"}],
        "deviceName": [{"name": "Acme CGM System", "type": "user-friendly-name"}],
        "serialNumber": "ABC123",
    }
    return found


# The order of examples.fsh's cgmDataSubmissionBundle (no Device or molar reading in it).
_BUNDLE_ORDER = (
    ("cgmSummaryPDFExample", "DiagnosticReport"),
    ("cgmSummaryExample", "Observation"),
    ("cgmSummaryMeanGlucoseMassPerVolumeExample", "Observation"),
    ("cgmSummaryTimesInRangesExample", "Observation"),
    ("cgmSummaryGMIExample", "Observation"),
    ("cgmSummaryCoefficientOfVariationExample", "Observation"),
    ("cgmSummaryDaysOfWearExample", "Observation"),
    ("cgmSummarySensorActivePercentageExample", "Observation"),
    ("cgmSensorReadingMassPerVolumeExample", "Observation"),
)


def submission_bundle(subject: str = "Patient/patientExample") -> dict[str, Any]:
    """examples.fsh `cgmDataSubmissionBundle`."""
    found = examples(subject)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "timestamp": "2024-05-02T14:30:00Z",
        "entry": [
            {
                "fullUrl": f"https://example.org/{kind}/{name}",
                "resource": found[name],
                "request": {"method": "POST", "url": kind},
            }
            for name, kind in _BUNDLE_ORDER
        ],
    }
