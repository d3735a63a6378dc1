"""The guide's rules (`core.fhir_conformance`) against the guide's own examples, and against
what the builders (`core.fhir_cgm`) make. `fhir.resources` (R4B models: the package has no
R4 module, and R4B left these resources as R4 had them) parses structure only: it takes a
bogus LOINC code or a wrong unit without a word, which is why the rules exist."""

from __future__ import annotations

import copy
import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from pypdf import PdfReader

from api.fhir.report_pdf import summary_pdf
from core import fhir_cgm
from core.fhir_cgm import CgmSummaryValues, FhirReading, Member, Profile
from core.fhir_conformance import implied_profile, returned, submission_bundle, violations
from core.units import Unit
from core.vocabulary import RangeFlag, SourceKind
from tests.fhir import ig_examples

EXAMPLE_PROFILES = {
    "cgmSensorReadingMassPerVolumeExample": Profile.SENSOR_MASS,
    "cgmSensorReadingMolesPerVolumeExample": Profile.SENSOR_MOLES,
    "cgmSummaryMeanGlucoseMassPerVolumeExample": Profile.MEAN_MASS,
    "cgmSummaryTimesInRangesExample": Profile.TIMES_IN_RANGES,
    "cgmSummaryGMIExample": Profile.GMI,
    "cgmSummaryCoefficientOfVariationExample": Profile.CV,
    "cgmSummaryDaysOfWearExample": Profile.DAYS_OF_WEAR,
    "cgmSummarySensorActivePercentageExample": Profile.SENSOR_ACTIVE,
    "cgmSummaryExample": Profile.SUMMARY,
    "cgmSummaryPDFExample": Profile.SUMMARY_PDF,
    "cgmDeviceExample": Profile.DEVICE,
}
MODELS = {"Observation": Observation, "DiagnosticReport": DiagnosticReport, "Device": Device}
PATIENT = uuid.UUID("6f1c2b9e-3d4a-4b5c-8e7f-0a1b2c3d4e5f")


def _members(found: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"Observation/{r['id']}": r for r in found.values()}


@pytest.mark.parametrize("name", sorted(EXAMPLE_PROFILES))
def test_every_example_of_the_guide_conforms(name: str) -> None:
    found = ig_examples.examples()
    example = found[name]
    MODELS[example["resourceType"]].model_validate(example)
    assert violations(example, EXAMPLE_PROFILES[name], _members(found)) == []
    if example["resourceType"] != "Device":
        assert implied_profile(example) is EXAMPLE_PROFILES[name]


def test_the_guides_submission_bundle_is_a_submission_bundle() -> None:
    bundle = ig_examples.submission_bundle()
    Bundle.model_validate(bundle)
    assert submission_bundle(bundle) == []
    assert "type" in submission_bundle({**bundle, "type": "collection"})[0]


def test_a_bogus_loinc_code_passes_fhir_resources_and_is_caught_here() -> None:
    reading = copy.deepcopy(ig_examples.examples()["cgmSensorReadingMassPerVolumeExample"])
    reading["code"]["coding"][0]["code"] = "99999-9"
    Observation.model_validate(reading)  # structurally fine: no error
    assert violations(reading, Profile.SENSOR_MASS) == [
        "code: LOINC 99504-3 required, found ['99999-9']"
    ]
    assert implied_profile(reading) is None
    assert returned(reading) != []


def _mutated(name: str, change: Any) -> list[str]:
    found = ig_examples.examples()
    resource = found[name]
    change(resource)
    return violations(resource, EXAMPLE_PROFILES[name], _members(found))


@pytest.mark.parametrize(
    ("name", "change", "complaint"),
    [
        # UCUM is case-sensitive: mg/dl is not the UCUM code (the guide fixes code mg/dL).
        (
            "cgmSensorReadingMassPerVolumeExample",
            lambda r: r["valueQuantity"].update(code="mg/dl"),
            "valueQuantity.code",
        ),
        (
            "cgmSensorReadingMolesPerVolumeExample",
            lambda r: r["valueQuantity"].update(code="mg/dL", unit="mg/dl"),
            "valueQuantity.code",
        ),
        ("cgmSensorReadingMassPerVolumeExample", lambda r: r.pop("effectiveDateTime"), "effective"),
        (
            "cgmSensorReadingMassPerVolumeExample",
            lambda r: r.update(effectiveDateTime="2024-05-02T10:15:00"),  # no zone
            "effective",
        ),
        (
            "cgmSensorReadingMassPerVolumeExample",
            lambda r: r.pop("valueQuantity"),
            "cgm-sensor-value-or-dar",
        ),
        (
            "cgmSensorReadingMassPerVolumeExample",
            lambda r: r.update(valueString="120"),
            "valueString",
        ),
        ("cgmSensorReadingMassPerVolumeExample", lambda r: r.pop("subject"), "subject"),
        ("cgmSummaryGMIExample", lambda r: r["effectivePeriod"].pop("end"), "effectivePeriod.end"),
        ("cgmSummaryGMIExample", lambda r: r["valueQuantity"].update(value=140), "percentage"),
        (
            "cgmSummaryDaysOfWearExample",
            lambda r: r["valueQuantity"].update(code="h"),
            "valueQuantity.code",
        ),
        (
            "cgmSummaryTimesInRangesExample",
            lambda r: r["component"].pop(2),
            "component[97510-2]",
        ),
        (
            "cgmSummaryTimesInRangesExample",
            lambda r: r["component"][2]["valueQuantity"].update(value=60),
            "add up",
        ),
        ("cgmSummaryExample", lambda r: r["hasMember"].pop(2), "hasMember"),  # no GMI
        (
            "cgmSummaryExample",
            lambda r: r["hasMember"].append({"reference": "Observation/cgmSummaryGMIExample"}),
            "cgm-summary-gmi",  # two GMIs
        ),
        (
            "cgmSummaryPDFExample",
            lambda r: r["presentedForm"][0].update(data="bm90IGEgcGRm"),
            "not a PDF",
        ),
        ("cgmSummaryPDFExample", lambda r: r.pop("effectivePeriod"), "effectivePeriod"),
        ("cgmDeviceExample", lambda r: r.pop("deviceName"), "deviceName"),
        ("cgmDeviceExample", lambda r: r.pop("identifier"), "identifier"),
    ],
)
def test_what_the_guide_forbids_is_caught(name: str, change: Any, complaint: str) -> None:
    problems = _mutated(name, change)
    assert any(complaint in p for p in problems), problems


def _reading(
    source: SourceKind, unit: Unit, value: float, flag: RangeFlag | None = None
) -> dict[str, Any]:
    return fhir_cgm.reading_observation(
        FhirReading(
            identity=uuid.uuid4(),
            measured_at=datetime(2026, 11, 2, 7, 30, tzinfo=UTC),
            value=value,
            unit=unit,
            source=source,
            device_id=fhir_cgm.device_id(PATIENT, "SN-1"),
            range_flag=flag,
        ),
        f"Patient/{PATIENT}",
    )


@pytest.mark.parametrize(
    ("source", "unit", "code", "profile"),
    [
        (SourceKind.CGM, Unit.MG_DL, "99504-3", Profile.SENSOR_MASS),
        (SourceKind.CGM, Unit.MMOL_L, "105272-9", Profile.SENSOR_MOLES),
        (SourceKind.METER, Unit.MG_DL, "41653-7", None),
        (SourceKind.METER, Unit.MMOL_L, "14743-9", None),
        (SourceKind.LAB, Unit.MMOL_L, "14749-6", None),
    ],
)
def test_readings_are_built_to_the_guide_in_the_unit_measured(
    source: SourceKind, unit: Unit, code: str, profile: Profile | None
) -> None:
    value = 6.7 if unit is Unit.MMOL_L else 120.0
    resource = _reading(source, unit, value)
    Observation.model_validate(resource)
    assert returned(resource) == []
    assert resource["code"]["coding"][0]["code"] == code
    assert resource["valueQuantity"]["value"] == value
    assert resource["valueQuantity"]["code"] == unit.value
    assert resource.get("meta", {}).get("profile") == ([profile.value] if profile else None)


def test_a_hi_reading_says_its_value_is_above_the_meters_limit() -> None:
    resource = _reading(SourceKind.METER, Unit.MG_DL, 600.0, RangeFlag.ABOVE_RANGE)
    Observation.model_validate(resource)
    assert returned(resource) == []
    assert resource["valueQuantity"]["comparator"] == ">"
    assert resource["interpretation"][0]["coding"][0]["code"] == ">"
    low = _reading(SourceKind.METER, Unit.MMOL_L, 1.1, RangeFlag.BELOW_RANGE)
    assert low["valueQuantity"]["comparator"] == "<"


VALUES = CgmSummaryValues(
    start=datetime(2026, 11, 1, tzinfo=UTC),
    end=datetime(2026, 11, 15, tzinfo=UTC),
    unit=Unit.MMOL_L,
    mean=8.4,
    pct_very_low=0.5,
    pct_low=2.5,
    pct_in_range=71.0,
    pct_high=20.0,
    pct_very_high=6.0,
    gmi_pct=7.0,
    cv_pct=33.3,
    days_of_wear=14,
    sensor_active_pct=92.9,
)


def test_a_built_summary_and_its_pdf_report_conform() -> None:
    ids: dict[Member | None, str] = {None: "s", **{m: f"s-{m.value}" for m in Member}}
    summary, *members = fhir_cgm.cgm_summary(VALUES, f"Patient/{PATIENT}", ids)
    by_ref = {f"Observation/{m['id']}": m for m in members}
    for resource in (summary, *members):
        Observation.model_validate(resource)
    assert returned(summary, by_ref) == []
    assert all(returned(m) == [] for m in members)
    mean = by_ref["Observation/s-mean"]
    assert mean["meta"]["profile"] == [Profile.MEAN_MOLES.value]  # measured in mmol/L
    pdf = summary_pdf(VALUES, PATIENT, datetime(2026, 11, 15, 8, tzinfo=UTC))
    report = fhir_cgm.summary_pdf_report("r", VALUES, f"Patient/{PATIENT}", "s", pdf, VALUES.end)
    DiagnosticReport.model_validate(report)
    assert returned(report) == []
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for line in (
        "Mean glucose: 8.4 mmol/L",
        "GMI (glucose management indicator): 7.0 %",
        "In range (3.9-10 mmol/L): 71.0 % (goal >70 %)",
        "Very low (< 3 mmol/L): 0.5 % (goal <1 %)",
        "Days of wear: 14",
    ):
        assert line in text, text


def test_a_cgm_sensor_is_a_cgm_device_and_a_meter_is_not() -> None:
    sensor = fhir_cgm.device(
        fhir_cgm.FhirDevice("d1", "DXCM-1", SourceKind.CGM, "Dexcom", "G7"), f"Patient/{PATIENT}"
    )
    meter = fhir_cgm.device(
        fhir_cgm.FhirDevice("d2", "SN-9", SourceKind.METER), f"Patient/{PATIENT}"
    )
    for resource in (sensor, meter):
        Device.model_validate(resource)
    assert returned(sensor) == []
    assert violations(meter, Profile.DEVICE) == []  # shaped alike, but claims no profile
    assert "meta" not in meter
