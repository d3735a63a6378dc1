"""The one writer of readings (`core.intake.write`) against the real database: what a batch
holds is stored once, held, or set aside with a reason; nothing is taken for something else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from core.contract import HeldRecord, MeterInfo, WireReading
from core.intake import DecodedBatch, write
from core.units import Unit
from core.vocabulary import HeldReason, SourceKind
from stack.local import register_bridge

AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _reading(minutes: int, value: float, sequence: int | None = None) -> WireReading:
    at = AT + timedelta(minutes=minutes)
    return WireReading(
        sequence_number=sequence,
        meter_time=at.replace(tzinfo=None),
        measured_at=at,
        value=value,
        unit=Unit.MG_DL,
        source=SourceKind.CGM,
    )


def _batch(
    readings: list[WireReading],
    *,
    patient: uuid.UUID | None,
    sender: str = "upload",
    device: str = "xdrip-G6",
    held: list[HeldRecord] | None = None,
    batch_id: uuid.UUID | None = None,
) -> DecodedBatch:
    return DecodedBatch(
        "test",
        b"{}",
        sender,
        batch_id or uuid.uuid4(),
        MeterInfo(serial=device),
        readings,
        held or [],
        patient_id=patient,
        claims_device=patient is not None,
    )


def _patient(database: str) -> uuid.UUID:
    with psycopg.connect(database) as conn:
        row = conn.execute("INSERT INTO patients (display_name) VALUES ('p') RETURNING id")
        found = row.fetchone()
        assert found is not None
        return uuid.UUID(str(found[0]))


def _rows(database: str, patient: uuid.UUID) -> list[tuple[float, bool]]:
    with psycopg.connect(database) as conn:
        return [
            (float(r[0]), bool(r[1]))
            for r in conn.execute(
                "SELECT value, conflict FROM readings WHERE patient_id = %s ORDER BY value",
                (patient,),
            )
        ]


def test_a_batch_delivered_twice_in_one_write_is_confirmed_once_with_true_counts(
    database: str,
) -> None:
    patient = _patient(database)
    readings = [_reading(5 * i, 100 + i, sequence=i) for i in range(10)]
    same = uuid.uuid4()
    with psycopg.connect(database) as conn:
        outcomes = write(
            conn,
            [_batch(readings, patient=patient, batch_id=same)] * 2,
            [],
        )
    assert [(o.batch_id, o.stored, o.duplicates) for o in outcomes] == [(same, 10, 0)]
    assert len(_rows(database, patient)) == 10


def test_a_changed_value_at_one_instant_is_kept_and_both_are_flagged(database: str) -> None:
    patient = _patient(database)
    with psycopg.connect(database) as conn:
        first = write(conn, [_batch([_reading(0, 113.0)], patient=patient)], [])
        again = write(conn, [_batch([_reading(0, 113.0)], patient=patient)], [])
        corrected = write(conn, [_batch([_reading(0, 121.0)], patient=patient)], [])
    assert (first[0].stored, again[0].duplicates, corrected[0].stored) == (1, 1, 1)
    assert _rows(database, patient) == [(113.0, True), (121.0, True)]


def test_a_batch_from_a_bridge_no_patient_registered_is_set_aside_whole(database: str) -> None:
    orphan = _batch([_reading(0, 100.0, sequence=1)], patient=None, sender="home-nobody")
    with psycopg.connect(database) as conn:
        (outcome,) = write(conn, [orphan], [])
        letters = conn.execute("SELECT sender, reason FROM dead_letters").fetchall()
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert (outcome.stored, outcome.rejected) == (0, 1)
    assert letters == [("home-nobody", letters[0][1])] and "not registered" in letters[0][1]
    assert stored == (0,)


def test_a_bridge_batch_belongs_to_the_bridge_patient_and_waits_for_the_claim(
    database: str,
) -> None:
    owner = register_bridge(database, "home-intake-1")
    sync = _batch(
        [_reading(0, 100.0, sequence=1)], patient=None, sender="home-intake-1", device="SN-9"
    )
    with psycopg.connect(database) as conn:
        (outcome,) = write(conn, [sync], [])
        row = conn.execute(
            "SELECT patient_id, awaiting_claim FROM readings WHERE device = 'SN-9'"
        ).fetchone()
        counted = conn.execute("SELECT count(*) FROM counted_readings").fetchone()
    assert outcome.stored == 1
    assert row == (owner, True)
    assert counted == (0,)


def test_held_records_are_kept_once_with_their_bytes_and_reason(database: str) -> None:
    patient = _patient(database)
    record = HeldRecord(
        sequence_number=42,
        reason=HeldReason.UNKNOWN_BASE_TIME,
        detail="base time year 0, month 0, day 0",
        raw_record=bytes.fromhex("132a00000000000000000000"),
    )
    with psycopg.connect(database) as conn:
        first = write(conn, [_batch([], patient=patient, held=[record])], [])
        again = write(conn, [_batch([], patient=patient, held=[record])], [])
        rows = conn.execute("SELECT sequence_number, reason, raw_record FROM held_records")
        held = rows.fetchall()
    assert (first[0].held, again[0].held) == (1, 0)
    assert held == [(42, "unknown_base_time", bytes.fromhex("132a00000000000000000000"))]
