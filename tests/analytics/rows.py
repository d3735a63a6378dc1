"""Readings written straight into the real database (the ingest path has its own tests)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import psycopg

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET
from core.units import MG_DL_PER_MMOL_L


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
    """One transaction, like an ingest write; sequence numbers per meter from 1."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO meters (serial, patient_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (serial, patient),
        )
        with conn.cursor().copy(
            "COPY readings (measured_at, meter_serial, sequence_number, meter_time, patient_id,"
            " bridge_id, batch_id, value, unit, mg_dl, sample_type, sensor_status, meal,"
            " received_at) FROM STDIN"
        ) as copy:
            batch = uuid.uuid4()
            for i, r in enumerate(rows):
                mg_dl = r.value if r.unit == "mg/dL" else r.value * MG_DL_PER_MMOL_L
                copy.write_row(
                    (
                        r.measured_at,
                        serial,
                        i + 1,
                        r.measured_at.replace(tzinfo=None),
                        patient,
                        "home-test",
                        batch,
                        r.value,
                        r.unit,
                        mg_dl,
                        r.sample_type,
                        r.sensor_status,
                        r.meal,
                        r.received_at or datetime.now().astimezone(),
                    )
                )
