"""Readings as interoperable documents: a FHIR R4 Bundle of Observations and Open mHealth
`blood-glucose` 4.0 data points. Pure: readings in, JSON-ready dicts out.

FHIR: each Observation is the one the FHIR endpoint serves (`core.fhir_cgm`): CGM readings
per the HL7 CGM guide's sensor-reading profiles (LOINC 99504-3 mg/dL, 105272-9 mmol/L),
fingersticks per our meter mapping (41653-7 mg/dL, 14743-9 mmol/L), always in the unit
measured; HI / LO as a comparator on the meter's limit. In this collection Bundle the
patient and devices are referenced by their `urn:uuid` entries; the meal context and
carbohydrates are extensions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from core.fhir_cgm import UCUM, FhirDevice, FhirReading, device, patient, reading_observation
from core.units import Unit, from_mg_dl
from core.vocabulary import RangeFlag, SourceKind

EXTENSION_BASE: Final = "https://glucobridge.org/fhir/StructureDefinition/"
# Stable resource ids: the same reading exported twice has the same Observation id.
_NAMESPACE: Final = uuid.UUID("1f0f8d7e-3c3a-4b8e-9b0a-6e2f6c1d7a55")


@dataclass(frozen=True)
class ExportReading:
    measured_at: datetime  # an instant (aware)
    value: float  # as measured
    unit: Unit  # as measured
    mg_dl: float
    device: str  # a meter's serial, a CGM uploader's device, an imported file
    source: SourceKind
    sequence_number: int | None
    meter_time: datetime  # raw meter clock, no zone
    sample_type: str | None
    sample_location: str | None
    meal: str | None
    carbohydrate_g: float | None
    identity: uuid.UUID  # the reading's identity (core.intake.identity)
    range_flag: RangeFlag | None = None  # HI / LO: the value is the meter's limit

    @property
    def is_cgm(self) -> bool:
        return self.source is SourceKind.CGM


def _urn(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{kind}:{key}')}"


def observation(reading: ExportReading, patient_ref: str, device_ref: str) -> dict[str, Any]:
    resource = reading_observation(
        FhirReading(
            identity=reading.identity,
            measured_at=reading.measured_at,
            value=reading.value,
            unit=reading.unit,
            source=reading.source,
            device_id="",  # referenced by its urn:uuid entry below
            range_flag=reading.range_flag,
        ),
        patient_ref,
    )
    del resource["id"]  # a collection entry is named by its fullUrl
    resource["device"] = {"reference": device_ref}
    extensions: list[dict[str, Any]] = []
    if reading.meal is not None:
        extensions.append({"url": EXTENSION_BASE + "meal-context", "valueCode": reading.meal})
    if reading.carbohydrate_g is not None:
        extensions.append(
            {
                "url": EXTENSION_BASE + "carbohydrate",
                "valueQuantity": {
                    "value": reading.carbohydrate_g,
                    "unit": "g",
                    "system": UCUM,
                    "code": "g",
                },
            }
        )
    if extensions:
        resource["extension"] = extensions
    if reading.sample_type is not None:
        resource["method"] = {"text": reading.sample_type.replace("_", " ")}
    if reading.sample_location is not None:
        resource["bodySite"] = {"text": reading.sample_location.replace("_", " ")}
    return resource


def bundle(
    patient_id: uuid.UUID,
    display_name: str,
    readings: list[ExportReading],
    generated_at: datetime,
) -> dict[str, Any]:
    """A `collection` Bundle: the Patient, one Device per meter, one Observation per reading."""
    patient_ref = _urn("patient", str(patient_id))
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_ref,
            "resource": {k: v for k, v in patient(patient_id, display_name).items() if k != "id"},
        }
    ]
    devices: dict[str, str] = {}
    for reading in readings:
        if reading.device not in devices:
            ref = _urn("device", reading.device)
            devices[reading.device] = ref
            resource = device(FhirDevice("", reading.device, reading.source), patient_ref)
            del resource["id"]  # a collection entry is named by its fullUrl
            entries.append({"fullUrl": ref, "resource": resource})
    for reading in readings:
        entries.append(
            {
                "fullUrl": _urn("reading", str(reading.identity)),
                "resource": observation(reading, patient_ref, devices[reading.device]),
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": generated_at.isoformat(),
        "total": len(readings),
        "entry": entries,
    }


# Open mHealth blood-glucose 4.0 -------------------------------------------------------------

OMH_SCHEMA: Final = {"namespace": "omh", "name": "blood-glucose", "version": "4.0"}
# The schema's specimen sources (specimen-source-2.x: breath, capillary blood, interstitial
# fluid, saliva, sweat, tears, urine). A capillary sample is capillary blood whether the
# meter reports it as whole blood or plasma; venous and arterial samples have no value in
# the schema, so they carry none.
_SPECIMEN = {
    "capillary_whole_blood": "capillary blood",
    "capillary_plasma": "capillary blood",
    "interstitial_fluid": "interstitial fluid",
}
_MEAL = {"before_meal": "before meal", "after_meal": "after meal", "fasting": "fasting"}
_RANGE_NOTE = {
    RangeFlag.ABOVE_RANGE: "HI: above the meter's measuring range; the value is its upper limit",
    RangeFlag.BELOW_RANGE: "LO: below the meter's measuring range; the value is its lower limit",
}


def omh_data_point(reading: ExportReading, unit: Unit, created_at: datetime) -> dict[str, Any]:
    value = reading.value if unit is reading.unit else round(from_mg_dl(reading.mg_dl, unit), 2)
    body: dict[str, Any] = {
        "blood_glucose": {"value": value, "unit": unit.value},
        "effective_time_frame": {"date_time": reading.measured_at.isoformat()},
    }
    if reading.sample_type in _SPECIMEN:
        body["specimen_source"] = _SPECIMEN[reading.sample_type]
    if reading.meal in _MEAL:
        body["temporal_relationship_to_meal"] = _MEAL[reading.meal]
    elif reading.meal == "bedtime":
        body["temporal_relationship_to_sleep"] = "before sleeping"
    if reading.range_flag is not None:
        # blood-glucose has no out-of-range field: the value is the meter's limit, and the
        # schema's free-text `user_notes` says what the meter showed.
        body["user_notes"] = _RANGE_NOTE[reading.range_flag]
    return {
        "header": {
            "uuid": str(uuid.uuid5(_NAMESPACE, f"omh:{reading.identity}")),
            "schema_id": OMH_SCHEMA,
            "source_creation_date_time": created_at.isoformat(),
            "modality": "sensed",
        },
        "body": body,
    }
