"""Readings written into the real database through the one intake (`core.intake.write`),
without the broker: the ingest path has its own tests."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import psycopg

from api.auth import Role, issue_access_token
from core.contract import MeterInfo, WireReading
from core.intake import DecodedBatch, reading_identity, write
from core.settings import DEV_JWT_SECRET
from core.units import Unit
from core.vocabulary import MealTag, SampleType, SensorStatus


@dataclass
class Row:
    measured_at: datetime
    value: float
    unit: str = "mg/dL"
    sample_type: str | None = "capillary_plasma"
    meal: str | None = None
    sensor_status: list[str] = field(default_factory=list)
    received_at: datetime | None = None  # None: now


def add_patient(
    database_url: str, tz: str, api: httpx.Client | None = None, name: str = "patient"
) -> uuid.UUID:
    """A patient with a user account; with `api`, the client then acts as that patient."""
    with psycopg.connect(database_url) as conn:
        user = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES (%s, %s, 'patient', 'no-login') RETURNING id",
            (f"{uuid.uuid4().hex}@example.org", name),
        ).fetchone()
        assert user is not None
        row = conn.execute(
            "INSERT INTO patients (display_name, timezone, user_id) VALUES (%s, %s, %s)"
            " RETURNING id",
            (name, tz, user[0]),
        ).fetchone()
        assert row is not None
    if api is not None:
        token = issue_access_token(DEV_JWT_SECRET, user[0], Role.PATIENT, datetime.now(UTC))
        api.headers["Authorization"] = f"Bearer {token}"
    return uuid.UUID(str(row[0]))


def insert(database_url: str, patient: uuid.UUID, rows: Sequence[Row], serial: str) -> None:
    """One write through the one intake, like an ingest write, from a device the patient
    owns; sequence numbers per meter from 1. A row's `received_at` (a reading synced long
    after it was taken) is set afterwards, as the database clock cannot be moved."""
    readings = [
        WireReading(
            sequence_number=i + 1,
            meter_time=r.measured_at.replace(tzinfo=None),
            measured_at=r.measured_at,
            value=r.value,
            unit=Unit(r.unit),
            sample_type=SampleType(r.sample_type) if r.sample_type else None,
            sensor_status=[SensorStatus(s) for s in r.sensor_status],
            meal=MealTag(r.meal) if r.meal else None,
        )
        for i, r in enumerate(rows)
    ]
    decoded = DecodedBatch(
        "tests/analytics",
        b"",
        "home-test",
        uuid.uuid4(),
        MeterInfo(serial=serial),
        readings,
        patient_id=patient,
        claims_device=True,
    )
    with psycopg.connect(database_url) as conn:
        (outcome,) = write(conn, [decoded], [])
        assert outcome.stored + outcome.duplicates == len(rows)
        for r, w in zip(rows, readings, strict=True):
            if r.received_at is not None:
                conn.execute(
                    "UPDATE readings SET received_at = %s WHERE identity = %s",
                    (
                        r.received_at,
                        reading_identity(
                            patient, serial, w.source_kind, w.sequence_number, w.meter_time, w.value
                        ),
                    ),
                )
