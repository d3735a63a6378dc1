"""One batch through the real broker, the ingest worker and TimescaleDB, read back by the API."""

from __future__ import annotations

import uuid

import httpx
import pytest

from core.units import Unit
from ingest.worker import Worker
from tests.api.owner import owner_auth
from tests.support import Bridge, add_patient, batch, readings


def test_a_published_batch_reads_back_through_the_api(
    database: str, ingest_worker: Worker, bridge: Bridge, api: httpx.Client
) -> None:
    patient = add_patient(database, "王芳", "SN-E2E-1", bridge_id=bridge.bridge_id)
    api.headers.update(owner_auth(database, patient))  # the patient signed in
    sent = readings(12)
    bridge.send(batch(bridge.bridge_id, "SN-E2E-1", sent))

    page = api.get(f"/api/v1/patients/{patient}/readings", params={"limit": 100}).json()

    got = sorted((r["sequence_number"], r["value"], r["measured_at"]) for r in page["items"])
    want = sorted(
        (r.sequence_number, r.value, r.measured_at.isoformat().replace("+00:00", "Z")) for r in sent
    )
    assert got == want
    assert page["next_cursor"] is None
    assert {r["sample_location"] for r in page["items"]} == {"finger"}


def test_values_come_back_in_the_unit_the_user_prefers_with_the_measured_value_kept(
    database: str, ingest_worker: Worker, bridge: Bridge, api: httpx.Client
) -> None:
    patient = add_patient(database, "Li", "SN-E2E-2", bridge_id=bridge.bridge_id)
    api.headers.update(owner_auth(database, patient))  # the patient signed in
    sent = readings(3, unit=Unit.MMOL_L)
    bridge.send(batch(bridge.bridge_id, "SN-E2E-2", sent))

    items = api.get(f"/api/v1/patients/{patient}/readings", params={"unit": "mg/dL"}).json()[
        "items"
    ]

    by_seq = {r["sequence_number"]: r for r in items}
    for reading in sent:
        shown = by_seq[reading.sequence_number]
        assert shown["unit_as_measured"] == "mmol/L"
        assert shown["value_as_measured"] == reading.value
        assert shown["value"] == pytest.approx(reading.value * 18.016, abs=0.01)


def test_pages_walk_every_reading_once(
    database: str, ingest_worker: Worker, bridge: Bridge, api: httpx.Client
) -> None:
    patient = add_patient(database, "Paging", "SN-E2E-3", bridge_id=bridge.bridge_id)
    api.headers.update(owner_auth(database, patient))  # the patient signed in
    bridge.send(batch(bridge.bridge_id, "SN-E2E-3", readings(25)))

    seen: list[int] = []
    params: dict[str, str | int] = {"limit": 10}
    while True:
        page = api.get(f"/api/v1/patients/{patient}/readings", params=params).json()
        seen += [r["sequence_number"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert sorted(seen) == list(range(1, 26))
    assert seen == sorted(seen, reverse=True)  # newest first


def test_an_unknown_patient_is_a_problem_document(database: str, api: httpx.Client) -> None:
    api.headers.update(owner_auth(database, add_patient(database, "Someone", "SN-E2E-0")))
    response = api.get(f"/api/v1/patients/{uuid.uuid4()}/readings")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/not-found")


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"cursor": "not-a-cursor"}, {"start": "2026-11-01T00:00:00"}, {"unit": "g/L"}],
)
def test_bad_query_parameters_are_refused_with_a_reason(
    database: str, api: httpx.Client, params: dict[str, object]
) -> None:
    patient = add_patient(database, "Q", "SN-E2E-4")
    api.headers.update(owner_auth(database, patient))  # the patient signed in
    response = api.get(f"/api/v1/patients/{patient}/readings", params=params)
    assert response.status_code in (400, 422)
    assert response.json()["detail"]
