"""What the API shows of a meter's edges: held records (the patient and the care team with
`readings` list them, the patient confirms or corrects a time and the record becomes a
reading through the one intake, an admin lists them across patients, audited), and HI / LO
readings shown as such in the readings list, the CSV and the Open mHealth export.

The records are made by the bridge's own conversion (device.readings) from meter records
and stored through the one intake, as a bridge's batch arriving at ingest would be."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg

from core.contract import MeterInfo, ReadingsBatch
from core.intake import DecodedBatch, decode_bridge_message, write
from core.vocabulary import RangeFlag
from device.clock import ClockCorrection
from device.gls import (
    DateTime,
    GlucoseMeasurement,
    SampleLocation,
    SampleType,
    SensorStatus,
    SFloat,
    SFloatSpecial,
    kg_per_l_from_mg_dl,
)
from device.meter_ranges import DEFAULT_RANGE
from device.readings import convert
from device.records import MeterRecord
from stack.local import register_bridge
from tests.api.conftest import Cast, audit_rows
from tests.support import claim

SERIAL = "SN-EDGE-API"
BRIDGE = "home-edge-api"
UTC_ZONE = ZoneInfo("UTC")
DAY = datetime(2025, 3, 1, tzinfo=UTC)


def _record(seq: int, at: datetime | None, value: SFloat, **fields: object) -> MeterRecord:
    base = DateTime.from_datetime(at.replace(tzinfo=None)) if at else DateTime(0, 0, 0, 9)
    return MeterRecord.of(
        GlucoseMeasurement(
            sequence_number=seq,
            base_time=base,
            concentration=value,
            sample_type=SampleType.CAPILLARY_PLASMA,
            sample_location=SampleLocation.FINGER,
            **fields,  # type: ignore[arg-type]
        )
    )


def _deliver(cast: Cast, records: list[MeterRecord]) -> None:
    """As ingest stores a bridge's batch: the bridge's conversion, then the one intake."""
    patient = cast.patient.patient_id
    assert patient is not None
    register_bridge(cast.database_url, BRIDGE, patient)
    claim(cast.database_url, patient, SERIAL)
    converted = convert(records, ClockCorrection(UTC_ZONE), DEFAULT_RANGE)
    payload = ReadingsBatch(
        bridge_id=BRIDGE,
        meter=MeterInfo(serial=SERIAL),
        readings=converted.readings,
        held=converted.held,
    ).to_json()
    decoded = decode_bridge_message(f"glucose/v1/bridges/{BRIDGE}/readings", payload)
    assert isinstance(decoded, DecodedBatch) and not decoded.rejected
    with psycopg.connect(cast.database_url) as conn:
        write(conn, [decoded], [])


def _held(client: httpx.Client, cast: Cast, who: str = "patient") -> list[dict[str, object]]:
    url = f"/api/v1/patients/{cast.patient.patient_id}/held-records"
    response = client.get(url, headers=cast[who].auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_held_records_are_listed_and_a_confirmed_time_makes_a_reading(
    client: httpx.Client, cast: Cast
) -> None:
    value = kg_per_l_from_mg_dl(110)
    unknown = _record(2, None, value)  # the clock was never set: year, month, day 0
    nan = _record(4, DAY + timedelta(hours=11), SFloat.special_value(SFloatSpecial.NAN))
    _deliver(
        cast,
        [
            _record(1, DAY + timedelta(hours=8), kg_per_l_from_mg_dl(95)),
            unknown,
            _record(3, DAY + timedelta(hours=10), kg_per_l_from_mg_dl(140)),
            nan,
        ],
    )
    listed = {item["sequence_number"]: item for item in _held(client, cast)}
    assert set(listed) == {2, 4}
    held = listed[2]
    assert held["reason"] == "unknown_base_time" and held["resolvable"] is True
    assert held["raw_record"] == unknown.raw.hex()
    assert held["value"] == 110.0 and held["unit"] == "mg/dL"
    # Halfway in sequence numbers between 08:00 (seq 1) and 10:00 (seq 3).
    assert held["estimated_at"] == (DAY + timedelta(hours=9)).isoformat().replace("+00:00", "Z")
    assert listed[4]["reason"] == "no_value" and listed[4]["resolvable"] is False

    # The care team with the readings scope sees them too; only the patient resolves.
    assert {i["id"] for i in _held(client, cast, "nutritionist_readings_only")} == {
        held["id"],
        listed[4]["id"],
    }
    base = f"/api/v1/patients/{cast.patient.patient_id}/held-records"
    denied = client.post(f"{base}/{held['id']}/confirm", headers=cast["nutritionist_granted"].auth)
    assert denied.status_code == 404
    no_value = client.post(f"{base}/{listed[4]['id']}/confirm", headers=cast.patient.auth)
    assert no_value.status_code == 422
    assert no_value.headers["content-type"] == "application/problem+json"

    confirmed = client.post(f"{base}/{held['id']}/confirm", headers=cast.patient.auth)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["resolution"] == "confirmed" and body["resolvable"] is False
    assert datetime.fromisoformat(body["measured_at"]) == DAY + timedelta(hours=9)
    again = client.post(f"{base}/{held['id']}/confirm", headers=cast.patient.auth)
    assert again.status_code == 409

    readings = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/readings", headers=cast.patient.auth
    ).json()["items"]
    assert [(r["sequence_number"], r["value"]) for r in readings] == [
        (3, 140.0),
        (2, 110.0),
        (1, 95.0),
    ]
    assert datetime.fromisoformat(readings[1]["measured_at"]) == DAY + timedelta(hours=9)
    open_only = client.get(base, params={"open_only": True}, headers=cast.patient.auth)
    assert [i["sequence_number"] for i in open_only.json()["items"]] == [4]


def test_a_time_without_an_estimate_is_given_by_the_patient(
    client: httpx.Client, cast: Cast
) -> None:
    lone = _record(7, None, kg_per_l_from_mg_dl(180))  # no readings around it: no estimate
    _deliver(cast, [lone])
    [held] = _held(client, cast)
    assert held["estimated_at"] is None and held["resolvable"] is True
    url = f"/api/v1/patients/{cast.patient.patient_id}/held-records/{held['id']}"
    nothing = client.post(f"{url}/confirm", headers=cast.patient.auth)
    assert nothing.status_code == 422
    naive = client.post(
        f"{url}/correct", json={"measured_at": "2025-03-02T07:45:00"}, headers=cast.patient.auth
    )
    assert naive.status_code == 422
    future = client.post(
        f"{url}/correct", json={"measured_at": "2099-01-01T00:00:00Z"}, headers=cast.patient.auth
    )
    assert future.status_code == 422  # the contract refuses a date that far ahead
    given = datetime(2025, 3, 2, 7, 45, tzinfo=UTC)
    corrected = client.post(
        f"{url}/correct", json={"measured_at": given.isoformat()}, headers=cast.patient.auth
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["resolution"] == "corrected"
    [reading] = client.get(
        f"/api/v1/patients/{cast.patient.patient_id}/readings", headers=cast.patient.auth
    ).json()["items"]
    assert reading["sequence_number"] == 7 and reading["value"] == 180.0
    assert datetime.fromisoformat(reading["measured_at"]) == given


def test_an_admin_lists_held_records_across_patients_and_each_patient_sees_it(
    client: httpx.Client, cast: Cast
) -> None:
    _deliver(cast, [_record(9, DAY, SFloat.special_value(SFloatSpecial.NRES))])
    forbidden = client.get("/api/v1/held-records", headers=cast.patient.auth)
    assert forbidden.status_code == 403
    request_id = f"admin-held-{uuid.uuid4().hex[:8]}"
    response = client.get(
        "/api/v1/held-records",
        headers={**cast["admin"].auth, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["reason"] == "no_value" and item["patient_id"] == str(cast.patient.patient_id)
    [(actor, patient, action, _address, _grant, _outcome)] = audit_rows(
        cast.database_url, request_id
    )
    assert (actor, patient, action) == (
        cast["admin"].id,
        cast.patient.patient_id,
        "list_all_held_records",
    )


def test_hi_and_lo_show_as_such_in_the_readings_list_csv_and_open_mhealth(
    client: httpx.Client, cast: Cast
) -> None:
    infinity = SFloat.special_value(SFloatSpecial.POSITIVE_INFINITY)
    minus = SFloat.special_value(SFloatSpecial.NEGATIVE_INFINITY)
    _deliver(
        cast,
        [
            _record(
                1, DAY + timedelta(hours=8), infinity, sensor_status=SensorStatus.RESULT_TOO_HIGH
            ),
            _record(2, DAY + timedelta(hours=9), kg_per_l_from_mg_dl(101)),
            _record(3, DAY + timedelta(hours=10), minus, sensor_status=SensorStatus.RESULT_TOO_LOW),
        ],
    )
    patient = cast.patient.patient_id
    auth = cast.patient.auth
    # DEFAULT_RANGE: 20-600 mg/dL where the meter says nothing of its own.
    listed = client.get(f"/api/v1/patients/{patient}/readings", headers=auth).json()["items"]
    assert [(r["value"], r["range_flag"], r["shown_as"]) for r in listed] == [
        (20.0, RangeFlag.BELOW_RANGE.value, "LO"),
        (101.0, None, None),
        (600.0, RangeFlag.ABOVE_RANGE.value, "HI"),
    ]
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(f"/api/v1/patients/{patient}/exports/readings.csv", headers=auth).text
            )
        )
    )
    assert [(r["value"], r["shown_as"]) for r in rows] == [
        ("600.0", "HI"),
        ("101.0", ""),
        ("20.0", "LO"),
    ]
    omh = client.get(f"/api/v1/patients/{patient}/exports/openmhealth", headers=auth).json()
    notes = [p["body"].get("user_notes", "") for p in omh["items"]]
    assert notes[0].startswith("HI") and notes[1] == "" and notes[2].startswith("LO")
