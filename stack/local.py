"""The local stack: a private Mosquitto and PostgreSQL/TimescaleDB, or the ones configured.

When GLUCOBRIDGE_DATABASE_URL / GLUCOBRIDGE_MQTT_URL are set, those existing services are used
and nothing is started for them. Everything started here stops on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from core import db
from stack.mosquitto import INGEST_USER, Mosquitto
from stack.postgres import Postgres


def state_dir() -> Path:
    """Where private services keep their files: GLUCOBRIDGE_STATE_DIR if set; in a checkout,
    its git-ignored .state folder; installed from a wheel, the user's state directory."""
    configured = os.environ.get("GLUCOBRIDGE_STATE_DIR")
    if configured:
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".state"
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "glucobridge"


@dataclass
class Services:
    database_url: str
    mqtt_url: str
    mosquitto: Mosquitto | None
    postgres: Postgres | None

    def add_bridge(self, bridge_id: str, patient_id: uuid.UUID | None = None) -> str:
        """Register a bridge to a patient (a new patient when none is named) and give it
        MQTT credentials on the private broker; returns its broker URL. Ingest attaches
        what the bridge delivers to that patient."""
        if self.mosquitto is None:
            raise RuntimeError("bridges on an external broker are provisioned by its operator")
        register_bridge(self.database_url, bridge_id, patient_id)
        self.mosquitto.add_user(bridge_id)
        return self.mosquitto.url(bridge_id)


def register_bridge(
    database_url: str, bridge_id: str, patient_id: uuid.UUID | None = None
) -> uuid.UUID:
    """Record that a bridge belongs to a patient (a new patient when none is named), as the
    API does when a patient registers one; returns the patient's id."""
    with psycopg.connect(database_url) as conn:
        if patient_id is None:
            row = conn.execute(
                "INSERT INTO patients (display_name) VALUES (%s) RETURNING id",
                (f"patient of {bridge_id}",),
            ).fetchone()
            assert row is not None and isinstance(row[0], uuid.UUID)
            patient_id = row[0]
        conn.execute(
            "INSERT INTO bridges (id, patient_id) VALUES (%s, %s)"
            " ON CONFLICT (id) DO UPDATE SET patient_id = EXCLUDED.patient_id, revoked_at = NULL",
            (bridge_id, patient_id),
        )
    return patient_id


@contextlib.contextmanager
def local_stack(name: str) -> Iterator[Services]:
    """Start what is not configured, apply migrations, yield the endpoints, stop on the way out."""
    run_dir = state_dir() / "run" / f"{name}-{os.getpid()}"
    mosquitto: Mosquitto | None = None
    postgres: Postgres | None = None
    try:
        database_url = os.environ.get("GLUCOBRIDGE_DATABASE_URL")
        if not database_url:
            postgres = Postgres(run_dir / "postgres")
            postgres.start()
            database_url = postgres.url
        mqtt_url = os.environ.get("GLUCOBRIDGE_MQTT_URL")
        if not mqtt_url:
            mosquitto = Mosquitto(run_dir / "mosquitto")
            mosquitto.start()
            mqtt_url = mosquitto.url(INGEST_USER)
        db.upgrade(database_url)
        yield Services(database_url, mqtt_url, mosquitto, postgres)
    finally:
        if mosquitto is not None:
            mosquitto.stop()
        if postgres is not None:
            postgres.stop()
            if postgres.home != postgres.root:
                shutil.rmtree(postgres.home, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
