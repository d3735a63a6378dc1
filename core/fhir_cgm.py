"""Readings and their summaries as resources of the HL7 CGM Implementation Guide
(`hl7.fhir.uv.cgm` 1.0.0, FHIR 4.0.1). Pure: values in, JSON-ready dicts out.

The guide's source is github.com/HL7/cgm (input/fsh/profiles.fsh); every code, profile URL
and fixed Quantity below is copied from there, and `core.fhir_conformance` checks resources
against the same rules.

- A CGM reading is a `cgm-sensor-reading-mass-per-volume` (LOINC 99504-3, mg/dL) or
  `cgm-sensor-reading-moles-per-volume` (105272-9, mmol/L) in the unit it was measured in:
  nothing is converted, so a boundary never moves.
- A fingerstick (meter) reading has no profile in the guide, which covers CGM only. Our
  mapping: LOINC 41653-7 "Glucose [Mass/volume] in Capillary blood by Glucometer" in mg/dL,
  or 14743-9 "Glucose [Moles/volume] in Capillary blood by Glucometer" in mmol/L, again in
  the unit measured. A laboratory result: 2345-7 / 14749-6 (serum or plasma).
- A meter's HI / LO (a result outside its measuring range) is stored with the meter's limit
  as its value; here it becomes that limit with the Quantity comparator `>` (above range) or
  `<` (below range) and the interpretation "off scale high / low" (v3
  ObservationInterpretation `>` / `<`): the true value is beyond the limit, and says so.
- The `cgm-summary` (LOINC 107931-8) for a period has its members as separate Observations:
  mean glucose, times in ranges (106793-3 with its five components), GMI, CV, days of wear
  and sensor active %.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from core.units import Unit
from core.vocabulary import RangeFlag, SourceKind

IG: Final = "http://hl7.org/fhir/uv/cgm"
CGM_DATA_RECEIVER: Final = f"{IG}/CapabilityStatement/cgm-data-receiver"
SUBMIT_CGM_BUNDLE: Final = f"{IG}/OperationDefinition/submit-cgm-bundle"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DEVICE_NAME_TYPE: Final = "user-friendly-name"
# Identifiers this server gives what it holds.
READING_SYSTEM: Final = "https://glucobridge.org/fhir/reading"
PATIENT_SYSTEM: Final = "https://glucobridge.org/fhir/patient"
DEVICE_SYSTEM: Final = "https://glucobridge.org/fhir/device"
PDF: Final = "application/pdf"


class Profile(StrEnum):
    SENSOR_MASS = f"{IG}/StructureDefinition/cgm-sensor-reading-mass-per-volume"
    SENSOR_MOLES = f"{IG}/StructureDefinition/cgm-sensor-reading-moles-per-volume"
    SUMMARY = f"{IG}/StructureDefinition/cgm-summary"
    MEAN_MASS = f"{IG}/StructureDefinition/cgm-summary-mean-glucose-mass-per-volume"
    MEAN_MOLES = f"{IG}/StructureDefinition/cgm-summary-mean-glucose-moles-per-volume"
    TIMES_IN_RANGES = f"{IG}/StructureDefinition/cgm-summary-times-in-ranges"
    GMI = f"{IG}/StructureDefinition/cgm-summary-gmi"
    CV = f"{IG}/StructureDefinition/cgm-summary-coefficient-of-variation"
    DAYS_OF_WEAR = f"{IG}/StructureDefinition/cgm-summary-days-of-wear"
    SENSOR_ACTIVE = f"{IG}/StructureDefinition/cgm-summary-sensor-active-percentage"
    SUMMARY_PDF = f"{IG}/StructureDefinition/cgm-summary-pdf"
    DEVICE = f"{IG}/StructureDefinition/cgm-device"
    SUBMISSION_BUNDLE = f"{IG}/StructureDefinition/cgm-data-submission-bundle"


class Loinc(StrEnum):
    SENSOR_MASS = "99504-3"
    SENSOR_MOLES = "105272-9"
    METER_MASS = "41653-7"  # our meter mapping, not the guide's
    METER_MOLES = "14743-9"  # our meter mapping, not the guide's
    LAB_MASS = "2345-7"  # our mapping of laboratory results, not the guide's
    LAB_MOLES = "14749-6"  # our mapping of laboratory results, not the guide's
    SUMMARY = "107931-8"
    MEAN_MASS = "97507-8"
    MEAN_MOLES = "105273-7"
    TIMES_IN_RANGES = "106793-3"
    TIME_VERY_LOW = "104642-4"
    TIME_LOW = "104641-6"
    TIME_IN_TARGET = "97510-2"
    TIME_HIGH = "104640-8"
    TIME_VERY_HIGH = "104639-0"
    GMI = "97506-0"
    CV = "104638-2"
    DAYS_OF_WEAR = "104636-6"
    SENSOR_ACTIVE = "104637-4"


READING_DISPLAY: Final = {
    Loinc.SENSOR_MASS: "Glucose [Mass/volume] in Interstitial fluid",
    Loinc.SENSOR_MOLES: "Glucose [Moles/volume] in Interstitial fluid",
    Loinc.METER_MASS: "Glucose [Mass/volume] in Capillary blood by Glucometer",
    Loinc.METER_MOLES: "Glucose [Moles/volume] in Capillary blood by Glucometer",
    Loinc.LAB_MASS: "Glucose [Mass/volume] in Serum or Plasma",
    Loinc.LAB_MOLES: "Glucose [Moles/volume] in Serum or Plasma",
}

# The guide fixes each Quantity as UCUM code plus a display unit (its `valueQuantity =
# 'mg/dL' "mg/dl"` rules): (code, unit).
QUANTITY: Final = {
    Unit.MG_DL: ("mg/dL", "mg/dl"),
    Unit.MMOL_L: ("mmol/L", "mmol/l"),
}
PERCENT: Final = ("%", "%")
DAYS: Final = ("d", "days")

# (source, unit measured) -> (LOINC code, profile or None for the meter mapping).
READING_CODES: Final = {
    (SourceKind.CGM, Unit.MG_DL): (Loinc.SENSOR_MASS, Profile.SENSOR_MASS),
    (SourceKind.CGM, Unit.MMOL_L): (Loinc.SENSOR_MOLES, Profile.SENSOR_MOLES),
    (SourceKind.METER, Unit.MG_DL): (Loinc.METER_MASS, None),
    (SourceKind.METER, Unit.MMOL_L): (Loinc.METER_MOLES, None),
    (SourceKind.LAB, Unit.MG_DL): (Loinc.LAB_MASS, None),
    (SourceKind.LAB, Unit.MMOL_L): (Loinc.LAB_MOLES, None),
}
# Our mapping of what the guide does not cover: code -> (source, unit measured).
UNPROFILED_READINGS: Final = {
    code: key for key, (code, profile) in READING_CODES.items() if profile is None
}

# The five times in ranges, in the order of the consensus bands (very low ... very high).
RANGE_COMPONENTS: Final = (
    Loinc.TIME_VERY_LOW,
    Loinc.TIME_LOW,
    Loinc.TIME_IN_TARGET,
    Loinc.TIME_HIGH,
    Loinc.TIME_VERY_HIGH,
)
_OFF_SCALE: Final = {
    RangeFlag.ABOVE_RANGE: (">", "Off scale high"),
    RangeFlag.BELOW_RANGE: ("<", "Off scale low"),
}


def quantity(value: float, code_and_unit: tuple[str, str]) -> dict[str, Any]:
    code, unit = code_and_unit
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def coding(code: str, display: str | None = None, system: str = LOINC) -> dict[str, Any]:
    found: dict[str, Any] = {"system": system, "code": code}
    if display is not None:
        found["display"] = display
    return found


def _laboratory() -> list[dict[str, Any]]:
    return [{"coding": [coding("laboratory", "Laboratory", OBSERVATION_CATEGORY)]}]


def instant(at: datetime) -> str:
    """A FHIR instant: seconds precision, the zone always written."""
    if at.tzinfo is None:
        raise ValueError("an instant needs a zone")
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FhirReading:
    """One counted reading, as measured."""

    identity: uuid.UUID  # the reading's identity (core.intake.identity): its resource id
    measured_at: datetime
    value: float  # as measured; a HI / LO reading holds the meter's limit
    unit: Unit
    source: SourceKind
    device_id: str  # the Device resource id
    range_flag: RangeFlag | None = None
    # Identifiers a submitting system gave the reading ($submit-cgm-bundle), kept as sent.
    identifiers: tuple[tuple[str, str], ...] = ()


def reading_codes(source: SourceKind, unit: Unit) -> tuple[Loinc, Profile | None]:
    return READING_CODES[(source, unit)]


# Device resource ids: stable, and distinct per patient (two patients may share a meter).
_DEVICE_NAMESPACE: Final = uuid.UUID("5b1f3c2e-8d4a-4f6b-9c7e-2a1d0e9f8b37")


def device_id(patient_id: uuid.UUID, serial: str) -> str:
    return str(uuid.uuid5(_DEVICE_NAMESPACE, f"{patient_id}|{serial}"))


def reading_observation(reading: FhirReading, patient_ref: str) -> dict[str, Any]:
    """A CGM reading per the guide's sensor-reading profiles; a meter reading per our mapping."""
    code, profile = reading_codes(reading.source, reading.unit)
    value = quantity(reading.value, QUANTITY[reading.unit])
    identifiers = [{"system": READING_SYSTEM, "value": str(reading.identity)}]
    identifiers += [{"system": s, "value": v} for s, v in reading.identifiers]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(reading.identity),
        "identifier": identifiers,
        "status": "final",
        "category": _laboratory(),
        "code": {"coding": [coding(code, READING_DISPLAY[code])]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": instant(reading.measured_at),
        "valueQuantity": value,
        "device": {"reference": f"Device/{reading.device_id}"},
    }
    if profile is not None:
        resource["meta"] = {"profile": [profile.value]}
    if reading.range_flag is not None:
        comparator, display = _OFF_SCALE[reading.range_flag]
        value["comparator"] = comparator
        resource["interpretation"] = [{"coding": [coding(comparator, display, INTERPRETATION)]}]
    return resource


# -- the CGM summary ----------------------------------------------------------------------


@dataclass(frozen=True)
class CgmSummaryValues:
    """What a `cgm-summary` states about a period; glucose in `unit`, shares in percent."""

    start: datetime
    end: datetime
    unit: Unit
    mean: float
    pct_very_low: float
    pct_low: float
    pct_in_range: float
    pct_high: float
    pct_very_high: float
    gmi_pct: float
    cv_pct: float
    days_of_wear: int
    sensor_active_pct: float

    @property
    def ranges(self) -> tuple[float, float, float, float, float]:
        return (
            self.pct_very_low,
            self.pct_low,
            self.pct_in_range,
            self.pct_high,
            self.pct_very_high,
        )


class Member(StrEnum):
    """A summary member; the value is the short tag used in its resource id."""

    MEAN = "mean"
    RANGES = "tir"
    GMI = "gmi"
    CV = "cv"
    WEAR = "wear"
    ACTIVE = "active"


def _summary_base(
    resource_id: str, profile: Profile, code: Loinc, values: CgmSummaryValues, patient_ref: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": {"profile": [profile.value]},
        "status": "final",
        "category": _laboratory(),
        "code": {"coding": [coding(code)]},
        "subject": {"reference": patient_ref},
        "effectivePeriod": {"start": instant(values.start), "end": instant(values.end)},
    }


def cgm_summary(
    values: CgmSummaryValues, patient_ref: str, ids: dict[Member | None, str]
) -> list[dict[str, Any]]:
    """The `cgm-summary` Observation (first) and its six members. `ids` names each resource:
    `ids[None]` the summary, `ids[member]` each member."""
    mean_profile, mean_code = (
        (Profile.MEAN_MASS, Loinc.MEAN_MASS)
        if values.unit is Unit.MG_DL
        else (Profile.MEAN_MOLES, Loinc.MEAN_MOLES)
    )
    mean = _summary_base(ids[Member.MEAN], mean_profile, mean_code, values, patient_ref)
    mean["valueQuantity"] = quantity(values.mean, QUANTITY[values.unit])
    ranges = _summary_base(
        ids[Member.RANGES], Profile.TIMES_IN_RANGES, Loinc.TIMES_IN_RANGES, values, patient_ref
    )
    ranges["component"] = [
        {"code": {"coding": [coding(code)]}, "valueQuantity": quantity(share, PERCENT)}
        for code, share in zip(RANGE_COMPONENTS, values.ranges, strict=True)
    ]
    gmi = _summary_base(ids[Member.GMI], Profile.GMI, Loinc.GMI, values, patient_ref)
    gmi["valueQuantity"] = quantity(values.gmi_pct, PERCENT)
    cv = _summary_base(ids[Member.CV], Profile.CV, Loinc.CV, values, patient_ref)
    cv["valueQuantity"] = quantity(values.cv_pct, PERCENT)
    wear = _summary_base(
        ids[Member.WEAR], Profile.DAYS_OF_WEAR, Loinc.DAYS_OF_WEAR, values, patient_ref
    )
    wear["valueQuantity"] = quantity(values.days_of_wear, DAYS)
    active = _summary_base(
        ids[Member.ACTIVE], Profile.SENSOR_ACTIVE, Loinc.SENSOR_ACTIVE, values, patient_ref
    )
    active["valueQuantity"] = quantity(values.sensor_active_pct, PERCENT)
    members = [mean, ranges, gmi, cv, wear, active]
    summary = _summary_base(ids[None], Profile.SUMMARY, Loinc.SUMMARY, values, patient_ref)
    summary["hasMember"] = [{"reference": f"Observation/{m['id']}"} for m in members]
    return [summary, *members]


def summary_pdf_report(
    resource_id: str,
    values: CgmSummaryValues,
    patient_ref: str,
    summary_id: str,
    pdf: bytes,
    issued: datetime,
) -> dict[str, Any]:
    """The `cgm-summary-pdf` DiagnosticReport: the report as a PDF, and its summary."""
    return {
        "resourceType": "DiagnosticReport",
        "id": resource_id,
        "meta": {"profile": [Profile.SUMMARY_PDF.value]},
        "status": "final",
        "code": {"coding": [coding(Loinc.SUMMARY)]},
        "subject": {"reference": patient_ref},
        "effectivePeriod": {"start": instant(values.start), "end": instant(values.end)},
        "issued": instant(issued),
        "result": [{"reference": f"Observation/{summary_id}"}],
        "presentedForm": [
            {
                "contentType": PDF,
                "data": base64.b64encode(pdf).decode(),
                "title": "CGM summary",
            }
        ],
    }


# -- devices and the patient ----------------------------------------------------------------


@dataclass(frozen=True)
class FhirDevice:
    id: str  # resource id
    serial: str
    source: SourceKind
    manufacturer: str | None = None
    model: str | None = None

    @property
    def name(self) -> str:
        """Manufacturer and model as the guide asks, or the serial when neither is known."""
        parts = [p for p in (self.manufacturer, self.model) if p]
        return " ".join(parts) or self.serial


def device(found: FhirDevice, patient_ref: str) -> dict[str, Any]:
    """A CGM sensor as `cgm-device`; a meter as a plain Device with the same shape."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "id": found.id,
        "identifier": [{"system": DEVICE_SYSTEM, "value": found.serial}],
        "serialNumber": found.serial,
        "deviceName": [{"name": found.name, "type": DEVICE_NAME_TYPE}],
        "type": {"text": "CGM sensor" if found.source is SourceKind.CGM else "glucose meter"},
        "patient": {"reference": patient_ref},
    }
    if found.manufacturer:
        resource["manufacturer"] = found.manufacturer
    if found.model:
        resource["modelNumber"] = found.model
    if found.source is SourceKind.CGM:
        resource["meta"] = {"profile": [Profile.DEVICE.value]}
    return resource


def patient(patient_id: uuid.UUID, display_name: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": str(patient_id),
        "identifier": [{"system": PATIENT_SYSTEM, "value": str(patient_id)}],
        "name": [{"text": display_name}],
    }
