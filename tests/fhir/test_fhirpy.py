"""Acceptance 1: a hospital system, registered as a client of the patient's clinic, reads two
weeks of home readings with `fhirpy` (an independent FHIR client, github.com/beda-software/
fhir-py): a token from a signed assertion, Observations page by page, every reading once, in
the unit it was measured in, with the CGM guide's profiles; the `cgm-summary` of the period
equals what `GET /api/v1/patients/{id}/trends` says, and what the consensus definitions give
when worked out here by hand.

Resources are parsed with `fhir.resources`' R4B models (the package has no R4 module; R4B
changed none of Observation, Bundle, Device, DiagnosticReport, Patient or OperationOutcome
from R4, unlike R5), and held to the guide's rules by `core.fhir_conformance`.
"""

from __future__ import annotations

import base64
import io
import json
import math
import statistics
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from pypdf import PdfReader

from core.fhir_cgm import Profile
from core.fhir_conformance import returned, violations
from tests.fhir.conftest import (
    FHIR,
    HospitalKey,
    World,
    access_log,
    access_token,
    register,
    store_readings,
)

CGM_SERIAL = "DXCM-G7-0042"
METER_SERIAL = "CONTOUR-1234"
CGM_EVERY = timedelta(minutes=5)
DAYS = 14
# A day the sensor was off: coverage must show it.
GAP_DAY = 5
PAGE = 1000
LOINC = "http://loinc.org"
SCOPES = "system/Observation.rs system/Patient.rs system/Device.rs system/DiagnosticReport.rs"


def _cgm_value(i: int) -> float:
    """A day-long wave around 140 mg/dL, with some very lows and lows sprinkled in."""
    if i % 97 == 0:
        return 50.0
    if i % 89 == 0:
        return 62.0
    return float(round(140 + 90 * math.sin(2 * math.pi * i / 288)))


@dataclass
class Loaded:
    start: datetime
    end: datetime
    cgm: dict[datetime, float]  # what the sensor measured in the period, mg/dL
    meter_mmol: dict[datetime, float]  # fingersticks in the period, mmol/L
    hi_at: datetime


@pytest.fixture
def loaded(world: World) -> Loaded:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    cgm: dict[datetime, float] = {}
    items = []
    at, i = start + timedelta(minutes=2, seconds=30), 0
    while at < end:
        if (at - start).days != GAP_DAY:
            cgm[at] = _cgm_value(i)
            items.append(_item(at, cgm[at], "mg/dL", "interstitial_fluid"))
        at, i = at + CGM_EVERY, i + 1
    # Just outside the period on both sides: a search of the period must not return them.
    for outside in (start - timedelta(hours=1), end):
        items.append(_item(outside, 111.0, "mg/dL", "interstitial_fluid"))
    store_readings(
        world.database_url, world.patient_id, CGM_SERIAL, items, manufacturer="Dexcom", model="G7"
    )
    meter_mmol = {start + timedelta(days=d, hours=7): 5.4 + d / 10 for d in range(DAYS)}
    hi_at = start + timedelta(days=3, hours=19)
    meter = [
        _item(t, v, "mmol/L", "capillary_whole_blood", seq)
        for seq, (t, v) in enumerate(meter_mmol.items(), start=1)
    ]
    # HI: the meter's limit (33.3 mmol/L) stands for a value above it.
    meter.append(
        {**_item(hi_at, 33.3, "mmol/L", "capillary_whole_blood", 100), "range_flag": "above_range"}
    )
    # A control-solution test: stored, never counted, never shown.
    meter.append(_item(start + timedelta(days=2, hours=9), 6.1, "mmol/L", "control_solution", 101))
    store_readings(world.database_url, world.patient_id, METER_SERIAL, meter)
    meter_mmol[hi_at] = 33.3
    return Loaded(start, end, cgm, meter_mmol, hi_at)


def _item(
    at: datetime, value: float, unit: str, sample_type: str, seq: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "meter_time": at.replace(tzinfo=None).isoformat(),
        "measured_at": at.isoformat(),
        "value": value,
        "unit": unit,
        "sample_type": sample_type,
    }
    if seq is not None:
        item["sequence_number"] = seq
    return item


def _z(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def hospital(http: httpx.Client, world: World) -> SyncFHIRClient:
    key = HospitalKey.generate("ES384")
    client_id = register(http, world.admin, world.clinic, key)
    token = access_token(http, key, client_id, SCOPES)
    return SyncFHIRClient(str(http.base_url).rstrip("/") + FHIR, authorization=f"Bearer {token}")


def test_fhirpy_reads_every_reading_once_page_by_page_in_the_measured_unit(
    http: httpx.Client, world: World, loaded: Loaded, hospital: SyncFHIRClient
) -> None:
    search = (
        hospital.resources("Observation")
        .search(
            patient=f"Patient/{world.patient_id}",
            date=[f"ge{_z(loaded.start)}", f"lt{_z(loaded.end)}"],
        )
        .limit(PAGE)
    )
    found = [dict(r.serialize()) for r in search.fetch_all()]
    ids = [r["id"] for r in found]
    assert len(ids) == len(set(ids)), "a reading came twice"
    expected = len(loaded.cgm) + len(loaded.meter_mmol)
    assert len(found) == expected
    with psycopg.connect(world.database_url) as conn:
        held = {
            str(identity): (measured_at, value, unit)
            for identity, measured_at, value, unit in conn.execute(
                "SELECT identity, measured_at, value, unit FROM counted_readings"
                " WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s",
                (world.patient_id, loaded.start, loaded.end),
            )
        }
    assert set(ids) == set(held)
    for resource in found:
        Observation.model_validate(resource)
        assert returned(resource) == [], resource
        at = datetime.fromisoformat(resource["effectiveDateTime"].replace("Z", "+00:00"))
        quantity = resource["valueQuantity"]
        codes = [c["code"] for c in resource["code"]["coding"]]
        if at in loaded.cgm:
            assert codes == ["99504-3"]
            assert resource["meta"]["profile"] == [Profile.SENSOR_MASS.value]
            assert (quantity["value"], quantity["code"]) == (loaded.cgm[at], "mg/dL")
        else:
            # Fingersticks measured in mmol/L stay in mmol/L (our meter mapping).
            assert codes == ["14743-9"]
            assert "meta" not in resource
            assert (quantity["value"], quantity["code"]) == (loaded.meter_mmol[at], "mmol/L")
            assert quantity.get("comparator") == (">" if at == loaded.hi_at else None)
        assert resource["subject"]["reference"] == f"Patient/{world.patient_id}"
    # Page by page: each page is one request, and the patient's access log holds each.
    pages = [
        e for e in access_log(http, world.patient) if e["action"] == "fhir_search_observations"
    ]
    assert len(pages) == math.ceil(expected / PAGE) > 1
    assert {(e["actor_kind"], e["actor_name"], e["outcome"]) for e in pages} == {
        ("fhir_client", "North Hospital EHR", "allowed")
    }
    _a_reading_read_by_id_is_the_one_searched(world, hospital)


def _hand_summary(values: list[float], times: list[datetime]) -> dict[str, float]:
    """The consensus metrics worked out from their definitions (DESIGN.md, Battelino 2019)."""
    n = len(values)
    mean = sum(values) / n
    expected_readings = (times[-1] - times[0]) // CGM_EVERY + 1
    return {
        "mean_mg_dl": mean,
        "pct_very_low": 100 * sum(v < 54 for v in values) / n,
        "pct_low": 100 * sum(54 <= v < 70 for v in values) / n,
        "pct_in_range": 100 * sum(70 <= v <= 180 for v in values) / n,
        "pct_high": 100 * sum(180 < v <= 250 for v in values) / n,
        "pct_very_high": 100 * sum(v > 250 for v in values) / n,
        "gmi_pct": 3.31 + 0.02392 * mean,
        "cv_pct": 100 * statistics.stdev(values) / mean,
        "days": DAYS,  # local days from the first reading to the last (the patient is in UTC)
        "cgm_coverage_pct": 100 * n / expected_readings,
    }


def _plain(bundle: Any) -> dict[str, Any]:
    """fetch_raw's Bundle with its entries' resources (fhirpy objects) back to JSON."""
    document = json.loads(json.dumps({k: v for k, v in bundle.items() if k != "entry"}))
    document["entry"] = [
        {
            **json.loads(json.dumps({k: v for k, v in e.items() if k != "resource"})),
            "resource": dict(e["resource"].serialize()),
        }
        for e in bundle.get("entry", [])
    ]
    return document


def _value(resource: dict[str, Any]) -> float:
    return float(resource["valueQuantity"]["value"])


def test_the_cgm_summary_equals_trends_and_the_definitions_and_the_pdf_says_so(
    http: httpx.Client, world: World, loaded: Loaded, hospital: SyncFHIRClient
) -> None:
    bundle = (
        hospital.resources("Observation")
        .search(
            patient=f"Patient/{world.patient_id}",
            code=f"{LOINC}|107931-8",
            date=[f"ge{_z(loaded.start)}", f"lt{_z(loaded.end)}"],
        )
        .fetch_raw()
    )
    document = _plain(bundle)
    Bundle.model_validate(document)
    resources = [e["resource"] for e in document["entry"]]
    summary, members = resources[0], {f"Observation/{r['id']}": r for r in resources[1:]}
    assert [e["search"]["mode"] for e in document["entry"]] == ["match"] + ["include"] * 6
    assert returned(summary, members) == []
    for member in members.values():
        Observation.model_validate(member)
        assert returned(member) == [], member
    assert summary["effectivePeriod"] == {"start": _z(loaded.start), "end": _z(loaded.end)}
    by_code = {r["code"]["coding"][0]["code"]: r for r in members.values()}
    ranges = {
        c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"]
        for c in by_code["106793-3"]["component"]
    }
    fhir = {
        "mean_mg_dl": _value(by_code["97507-8"]),
        "pct_very_low": ranges["104642-4"],
        "pct_low": ranges["104641-6"],
        "pct_in_range": ranges["97510-2"],
        "pct_high": ranges["104640-8"],
        "pct_very_high": ranges["104639-0"],
        "gmi_pct": _value(by_code["97506-0"]),
        "cv_pct": _value(by_code["104638-2"]),
        "days": _value(by_code["104636-6"]),
        "cgm_coverage_pct": _value(by_code["104637-4"]),
    }
    trends = http.get(
        f"/api/v1/patients/{world.patient_id}/trends",
        params={"start": _z(loaded.start), "end": _z(loaded.end), "source": "cgm"},
        headers=world.patient.auth,
    )
    assert trends.status_code == 200, trends.text
    said = trends.json()["summary"]
    assert fhir == {key: said[key] for key in fhir}
    times = sorted(loaded.cgm)
    by_hand = _hand_summary([loaded.cgm[t] for t in times], times)
    assert fhir == pytest.approx(by_hand, rel=1e-9)
    assert fhir["pct_very_low"] > 0 and fhir["pct_low"] > 0 and fhir["cgm_coverage_pct"] < 100
    # Read back by id, a member is the same resource.
    gmi = hospital.reference("Observation", by_code["97506-0"]["id"]).to_resource()
    assert dict(gmi.serialize()) == by_code["97506-0"]
    _patient_devices_and_the_pdf_report(world, loaded, hospital)


def _patient_devices_and_the_pdf_report(
    world: World, loaded: Loaded, hospital: SyncFHIRClient
) -> None:
    patient = dict(hospital.reference("Patient", str(world.patient_id)).to_resource().serialize())
    Patient.model_validate(patient)
    assert patient["name"] == [{"text": "Wang Fang"}]
    assert set(patient) == {"resourceType", "id", "identifier", "name"}
    devices = [
        dict(d.serialize())
        for d in hospital.resources("Device")
        .search(patient=f"Patient/{world.patient_id}")
        .fetch_all()
    ]
    by_serial = {d["serialNumber"]: d for d in devices}
    assert set(by_serial) == {CGM_SERIAL, METER_SERIAL}
    for device in devices:
        Device.model_validate(device)
    assert returned(by_serial[CGM_SERIAL]) == []
    assert by_serial[CGM_SERIAL]["deviceName"] == [
        {"name": "Dexcom G7", "type": "user-friendly-name"}
    ]
    assert "meta" not in by_serial[METER_SERIAL]  # a meter is no cgm-device
    reports = [
        dict(r.serialize())
        for r in hospital.resources("DiagnosticReport")
        .search(
            patient=f"Patient/{world.patient_id}",
            code=f"{LOINC}|107931-8",
            date=[f"ge{_z(loaded.start)}", f"lt{_z(loaded.end)}"],
        )
        .fetch_all()
    ]
    assert len(reports) == 1
    report = reports[0]
    DiagnosticReport.model_validate(report)
    assert returned(report) == []
    pdf = base64.b64decode(report["presentedForm"][0]["data"])
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    mean = sum(loaded.cgm.values()) / len(loaded.cgm)
    assert f"Mean glucose: {mean:.1f} mg/dL" in text
    assert "Time in ranges" in text and str(world.patient_id) in text
    # The report's summary is readable by the reference it gives.
    summary = hospital.reference("Observation", report["result"][0]["reference"].split("/")[1])
    assert violations(dict(summary.to_resource().serialize()), Profile.SUMMARY) == []


def _a_reading_read_by_id_is_the_one_searched(world: World, hospital: SyncFHIRClient) -> None:
    first = (
        hospital.resources("Observation")
        .search(patient=f"Patient/{world.patient_id}", code=f"{LOINC}|14743-9")
        .limit(1)
        .fetch()[0]
    )
    again = hospital.reference("Observation", first["id"]).to_resource()
    assert dict(again.serialize()) == dict(first.serialize())
    missing = hospital.reference("Observation", str(uuid.uuid4()))
    with pytest.raises(ResourceNotFound):
        missing.to_resource()
