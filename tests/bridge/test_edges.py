"""The edges of the Glucose Profile, against every simulator profile: nothing a meter holds is
lost. Each record becomes a reading (HI / LO at the meter's limit, reserved bits ignored,
control solution marked by location) or a held record with its raw bytes and reason (an
unknown base time, with an estimate from its neighbours; NaN; NRes; a length that does not
fit its flags; month 13); an unreadable newest record hides nothing newer.

Expected values are worked out here from the definitions, not taken from the bridge:

* HI / LO: GLS sends a result beyond the measuring range as SFLOAT +INF / -INF with the
  sensor status bits "result too high" (bit 5) / "result too low" (bit 6). The reading's
  value is the meter's documented limit: 600 mg/dL high for all the meters here; 10 mg/dL
  low for Roche's Accu-Chek meters (their manuals: measuring range 10-600 mg/dL), 20 mg/dL
  for the rest (the common 20-600). HI is above 250 (consensus level 2 hyperglycaemia: the
  high alert); LO below 54 (level 2 hypoglycaemia: the low alert at level 2).
* An unknown base time (year, month and day 0: the Date Time characteristic's "not known")
  between two readings gets the instant linear in the sequence number between theirs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from core.vocabulary import RangeFlag
from device.gls import (
    CarbohydrateId,
    DateTime,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Health,
    Meal,
    SampleLocation,
    SampleType,
    SFloat,
    SFloatSpecial,
    codes,  # codes.Tester: a module-level "Test*" name would be collected by pytest
    kg_per_l_from_mg_dl,
)
from firmware_sim.meter import SimulatedMeter
from firmware_sim.model import ModelReading
from firmware_sim.profiles import CARESENS, MeterProfile
from ingest.alerts.checks import evaluate_new_readings
from ingest.worker import Worker
from stack.local import Services
from tests.bridge.harness import HOME, kept, model_readings, rig
from tests.support import bridge_patient, claim

# Roche's documented lower limit; every other meter here measures from 20 mg/dL.
LOWER_LIMIT = {"accu_chek": 10.0, "roche": 10.0}
COMMON_LIMITS = (20.0, 600.0)
LATE_AFTER = timedelta(hours=24)
# A meter clock is read at one-second resolution (tests/bridge/test_clock.py).
CLOCK_TOLERANCE = timedelta(seconds=2)


def _limits(profile: MeterProfile) -> tuple[float, float]:
    return LOWER_LIMIT.get(profile.key, COMMON_LIMITS[0]), COMMON_LIMITS[1]


def _rows(database: str, sql: str, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(database) as conn:
        cur = conn.execute(sql.encode(), params)
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _evaluate(database: str) -> None:
    """One pass of the alerts worker's evaluation over what committed since the last."""
    with psycopg.connect(database) as conn:
        evaluate_new_readings(conn, LATE_AFTER)


def _now_local(offset: timedelta = timedelta(0)) -> datetime:
    return (datetime.now(UTC) - offset).replace(microsecond=0)


def test_hi_and_lo_are_readings_at_the_meters_limits_and_raise_their_alerts(
    services: Services,
    ingest_worker: Worker,
    database: str,
    tmp_path: Path,
    profile: MeterProfile,
) -> None:
    url = services.add_bridge("home-hilo")
    patient = bridge_patient(database, "home-hilo")
    claim(database, patient, "SN-HILO")
    low, high = _limits(profile)
    _evaluate(database)  # the alerts checkpoint starts before these readings

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-hilo") as r:
            meter = await r.add_paired_meter(profile, "SN-HILO", [])
            meter.measure(ModelReading(_now_local(timedelta(minutes=30)), 140))
            meter.measure(ModelReading(_now_local(timedelta(minutes=20)), 700))  # HI
            meter.measure(ModelReading(_now_local(timedelta(minutes=10)), 120))
            meter.measure(ModelReading(_now_local(timedelta(minutes=1)), 5))  # LO
            [report] = await r.bridge.sync_all()
            assert report.complete and report.readings == 4 and report.held == []
            await r.delivered()

    asyncio.run(scenario())
    rows = _rows(
        database,
        "SELECT sequence_number, value, unit, range_flag, sensor_status FROM readings"
        " WHERE device = %s ORDER BY sequence_number",
        "SN-HILO",
    )
    assert [(r["value"], r["range_flag"]) for r in rows] == [
        (140.0, None),
        (high, RangeFlag.ABOVE_RANGE.value),
        (120.0, None),
        (low, RangeFlag.BELOW_RANGE.value),
    ]
    assert "result_too_high" in rows[1]["sensor_status"]
    assert "result_too_low" in rows[3]["sensor_status"]
    _evaluate(database)
    alerts = _rows(
        database,
        "SELECT kind, level, extreme_mg_dl FROM alerts WHERE patient_id = %s"
        " AND delivery = 'page' ORDER BY kind",
        patient,
    )
    assert alerts == [
        {"kind": "high", "level": 1, "extreme_mg_dl": high},
        {"kind": "low", "level": 2, "extreme_mg_dl": low},
    ]


def _record(
    seq: int, base: DateTime, concentration: SFloat | None, **fields: Any
) -> GlucoseMeasurement:
    return GlucoseMeasurement(
        sequence_number=seq,
        base_time=base,
        concentration=concentration,
        sample_type=SampleType.CAPILLARY_PLASMA if concentration is not None else None,
        sample_location=SampleLocation.FINGER if concentration is not None else None,
        **fields,
    )


def _local(at: datetime) -> DateTime:
    return DateTime.from_datetime(at.astimezone(HOME).replace(tzinfo=None))


def _store_edges(meter: SimulatedMeter, start: datetime) -> dict[str, int]:
    """Every edge a meter may hold, between ordinary readings; their sequence numbers."""
    seq: dict[str, int] = {}

    def take(name: str) -> int:
        seq[name] = meter.memory.take_sequence_number()
        return seq[name]

    def store(name: str, measurement: GlucoseMeasurement | bytes) -> None:
        raw = bytes(measurement) if isinstance(measurement, GlucoseMeasurement) else measurement
        meter.store_raw(raw)
        meter.memory.next_sequence = seq[name] + 1

    value = kg_per_l_from_mg_dl(110)
    store("before", _record(take("before"), _local(start), value))
    store("unknown_time", _record(take("unknown_time"), DateTime(0, 0, 0, 7, 30), value))
    store("after", _record(take("after"), _local(start + timedelta(hours=2)), value))
    nan = SFloat.special_value(SFloatSpecial.NAN)
    store("nan", _record(take("nan"), _local(start + timedelta(hours=3)), nan))
    nres = SFloat.special_value(SFloatSpecial.NRES)
    store("nres", _record(take("nres"), _local(start + timedelta(hours=4)), nres))
    good = bytes(_record(take("bad_length"), _local(start + timedelta(hours=5)), value))
    store("bad_length", good + b"\x00")  # one byte more than its flags say
    reserved = bytearray(
        bytes(_record(take("reserved"), _local(start + timedelta(hours=6)), value))
    )
    reserved[0] |= 0x80  # a reserved flag bit
    reserved[-1] = 0x10  # location finger, sample type 0 (reserved)
    store("reserved", bytes(reserved))
    month_13 = bytearray(
        bytes(_record(take("month_13"), _local(start + timedelta(hours=7)), value))
    )
    month_13[5] = 13
    store("month_13", bytes(month_13))
    control = _record(take("control"), _local(start + timedelta(hours=8)), kg_per_l_from_mg_dl(45))
    control = dataclasses.replace(control, sample_location=SampleLocation.CONTROL_SOLUTION)
    store("control", control)
    store("last", _record(take("last"), _local(start + timedelta(hours=9)), value))
    return seq


def test_records_that_cannot_be_readings_are_held_with_their_bytes_and_reason(
    services: Services,
    ingest_worker: Worker,
    database: str,
    tmp_path: Path,
    profile: MeterProfile,
) -> None:
    url = services.add_bridge("home-edges")
    patient = bridge_patient(database, "home-edges")
    claim(database, patient, "SN-EDGES")
    start = datetime(2025, 3, 1, 8, tzinfo=HOME)

    async def scenario() -> dict[str, int]:
        async with rig(tmp_path, url, "home-edges") as r:
            meter = await r.add_paired_meter(profile, "SN-EDGES", [])
            seq = _store_edges(meter, start)
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == len(seq)
            await r.delivered()
            return seq

    seq = asyncio.run(scenario())
    assert kept(database, "SN-EDGES") == sorted(seq.values())  # each exactly once
    held = {
        row["sequence_number"]: row
        for row in _rows(
            database,
            "SELECT sequence_number, reason, raw_record, meter_time, estimated_at, patient_id"
            " FROM held_records WHERE device = %s",
            "SN-EDGES",
        )
    }
    assert {n: held[n]["reason"] for n in held} == {
        seq["unknown_time"]: "unknown_base_time",
        seq["nan"]: "no_value",
        seq["nres"]: "no_value",
        seq["bad_length"]: "malformed",
        seq["month_13"]: "invalid_time",
    }
    assert all(str(h["patient_id"]) == patient for h in held.values())
    # The bytes the meter sent, kept whole (the one byte too many included).
    assert bytes(held[seq["bad_length"]]["raw_record"])[-1:] == b"\x00"
    # Halfway in sequence numbers between the readings before (08:00) and after (10:00),
    # within the second a clock read costs on a meter whose clock the bridge reads.
    estimated = held[seq["unknown_time"]]["estimated_at"]
    assert abs(estimated - (start + timedelta(hours=1))) <= CLOCK_TOLERANCE
    assert held[seq["nan"]]["meter_time"] == datetime(2025, 3, 1, 11)
    readings = {
        r["sequence_number"]: r
        for r in _rows(
            database,
            "SELECT sequence_number, value, sample_type, sample_location, control, raw_record,"
            " context FROM readings WHERE device = %s",
            "SN-EDGES",
        )
    }
    reserved = readings[seq["reserved"]]
    assert reserved["value"] == 110.0 and reserved["sample_type"] is None
    assert bytes(reserved["raw_record"])[0] & 0x80  # stored as received, reserved bit and all
    assert reserved["context"]["reserved_ignored"] == ["flags bits 0x80", "sample type 0"]
    # Control solution marked by location alone: stored as control, counted nowhere.
    control = readings[seq["control"]]
    assert control["control"] is True and control["sample_type"] == "capillary_plasma"
    counted = _rows(
        database, "SELECT sequence_number FROM counted_readings WHERE device = %s", "SN-EDGES"
    )
    assert seq["control"] not in {r["sequence_number"] for r in counted}
    assert len(counted) == len(readings) - 1


def test_an_unreadable_newest_record_does_not_hide_newer_ones(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-newest")
    readings = model_readings(8)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-newest") as r:
            meter = await r.add_paired_meter(profile, "SN-NEWEST", readings[:5])
            broken = _record(5, _local(readings[4].at + timedelta(hours=1)), SFloat(1, -2))
            meter.store_raw(bytes(broken)[:-1])  # the newest record is one byte short
            [first] = await r.bridge.sync_all()
            assert first.complete and first.records == 6 and len(first.held) == 1
            meter.load(readings[5:])  # 6, 7, 8
            [second] = await r.bridge.sync_all()
            assert second.complete and second.records == 3
            await r.delivered()

    asyncio.run(scenario())
    assert kept(database, "SN-NEWEST") == list(range(9))


def test_tester_health_and_hba1c_from_the_context_are_published(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path, profile: MeterProfile
) -> None:
    url = services.add_bridge("home-context")
    with_context = dataclasses.replace(profile, context_records=True)

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-context") as r:
            meter = await r.add_paired_meter(with_context, "SN-CONTEXT", [])
            at = datetime(2025, 3, 1, 12, 30, tzinfo=HOME)
            measurement = dataclasses.replace(
                _record(0, _local(at), kg_per_l_from_mg_dl(162)), context_follows=True
            )
            context = GlucoseMeasurementContext(
                sequence_number=0,
                carbohydrate_id=CarbohydrateId.LUNCH,
                carbohydrate_kg=SFloat(60, -3),  # 60 g
                meal=Meal.AFTER_MEAL,
                tester=codes.Tester.SELF,
                health=Health.UNDER_STRESS,
                hba1c_pct=SFloat(72, -1),  # 7.2 %
            )
            meter.store_raw(bytes(measurement), bytes(context))
            [report] = await r.bridge.sync_all()
            assert report.complete and report.readings == 1
            await r.delivered()

    asyncio.run(scenario())
    [row] = _rows(
        database,
        "SELECT meal, carbohydrate_g, carbohydrate_meal, tester, health, hba1c_pct, raw_context"
        " FROM readings WHERE device = %s",
        "SN-CONTEXT",
    )
    assert row["raw_context"] is not None
    del row["raw_context"]
    assert row == {
        "meal": "after_meal",
        "carbohydrate_g": 60.0,
        "carbohydrate_meal": "lunch",
        "tester": "self",
        "health": "under_stress",
        "hba1c_pct": pytest.approx(7.2),
    }


def test_a_caresens_like_month_13_is_held_with_its_reason(
    services: Services, ingest_worker: Worker, database: str, tmp_path: Path
) -> None:
    """Every 25th record of the CareSens-like profile says month 13; no documented correction
    exists, so the bridge holds it (invalid time) and stores the rest."""
    url = services.add_bridge("home-caresens")
    assert CARESENS.invalid_month_every == 25

    async def scenario() -> None:
        async with rig(tmp_path, url, "home-caresens") as r:
            await r.add_paired_meter(CARESENS, "SN-CARESENS", model_readings(60))
            [report] = await r.bridge.sync_all()
            assert report.complete and report.records == 60
            await r.delivered()

    asyncio.run(scenario())
    held = _rows(
        database,
        "SELECT sequence_number, reason, estimated_at FROM held_records WHERE device = %s"
        " ORDER BY sequence_number",
        "SN-CARESENS",
    )
    assert [(h["sequence_number"], h["reason"]) for h in held] == [
        (24, "invalid_time"),
        (49, "invalid_time"),
    ]
    assert all(h["estimated_at"] is not None for h in held)  # readings on both sides
    assert kept(database, "SN-CARESENS") == list(range(60))
