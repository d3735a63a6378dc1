"""The local stack: a private Mosquitto and PostgreSQL/TimescaleDB, or the ones configured.

When GLUCOBRIDGE_DATABASE_URL is set, that database is used; when GLUCOBRIDGE_MQTT_ADMIN_URL
is set, that broker (Mosquitto with dynamic security) is used, and the stack provisions
through its admin the users it needs (resetting the passwords of `ingest-0`... and `alerts`:
never point it at a production broker). Everything started here stops on exit, Ctrl-C or
failure.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from api.broker_admin import BrokerAdmin
from core import db
from core.broker_roles import ALERTS_USER, INGEST_USER, BrokerRole
from core.settings import MqttEndpoint
from stack.mosquitto import LOCAL_INGEST_WORKERS, Mosquitto, broker_url
from stack.postgres import Postgres

ADMIN_URL_VARIABLE = "GLUCOBRIDGE_MQTT_ADMIN_URL"


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
    mqtt_url: str  # the ingest workers': worker i signs in as `ingest-i`
    alerts_mqtt_url: str  # the alerts worker's
    mqtt_admin_url: str  # the broker's dynamic-security admin, as the API gets it
    mosquitto: Mosquitto | None
    postgres: Postgres | None

    @property
    def broker(self) -> MqttEndpoint:
        return MqttEndpoint.parse(self.mqtt_admin_url)

    def admin(self) -> BrokerAdmin:
        return BrokerAdmin(self.mqtt_admin_url)

    def url(self, user: str, password: str) -> str:
        return broker_url(user, password, self.broker.port, self.broker.host)

    def add_bridge(self, bridge_id: str, patient_id: uuid.UUID | None = None) -> str:
        """Register a bridge to a patient (a new patient when none is named) and provision
        it in the broker through the admin, as the API does; returns its broker URL. Ingest
        attaches what the bridge delivers to that patient."""
        register_bridge(self.database_url, bridge_id, patient_id)
        credentials = self.admin().replace_bridge_sync(bridge_id)
        return self.url(credentials.username, credentials.password)

    def add_display(self, patient_id: uuid.UUID | str) -> str:
        """A home display of the patient (it reads their alerts); returns its broker URL."""
        credentials = self.admin().provision_display_sync(uuid.UUID(str(patient_id)))
        return self.url(credentials.username, credentials.password)

    def ingest_url(self, base: str, workers: int = 1) -> str:
        """Ingest worker users `base-0` ... of their own (a test whose workers' sessions must
        not be shared with others'); returns the URL workers are given."""
        password = secrets.token_urlsafe(16)
        self.admin().ingest_workers_sync(base, workers, password)
        return self.url(base, password)


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


def _external_broker(admin_url: str) -> tuple[str, str]:
    """Service users on a broker the stack did not start: (ingest URL, alerts URL)."""
    endpoint = MqttEndpoint.parse(admin_url)
    admin = BrokerAdmin(admin_url)
    ingest_password, alerts_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    admin.ingest_workers_sync(INGEST_USER, LOCAL_INGEST_WORKERS, ingest_password)
    admin.set_service_users_sync(BrokerRole.ALERTS, [ALERTS_USER], alerts_password)
    return (
        broker_url(INGEST_USER, ingest_password, endpoint.port, endpoint.host),
        broker_url(ALERTS_USER, alerts_password, endpoint.port, endpoint.host),
    )


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
        admin_url = os.environ.get(ADMIN_URL_VARIABLE)
        if admin_url:
            ingest_url, alerts_url = _external_broker(admin_url)
        else:
            mosquitto = Mosquitto(run_dir / "mosquitto")
            mosquitto.start()
            admin_url, ingest_url, alerts_url = (
                mosquitto.admin_url,
                mosquitto.ingest_url,
                mosquitto.alerts_url,
            )
        db.upgrade(database_url)
        yield Services(database_url, ingest_url, alerts_url, admin_url, mosquitto, postgres)
    finally:
        if mosquitto is not None:
            mosquitto.stop()
        if postgres is not None:
            postgres.stop()
            if postgres.home != postgres.root:
                shutil.rmtree(postgres.home, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
