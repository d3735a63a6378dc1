"""Fixtures for the API's identity, consent and audit tests: the API served with the
session broker's admin (the stack's one broker set-up, dynamic security), and a cast of
users whose grants cover every case the authorization matrix needs."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import psycopg
import pytest

from api.auth import ALGORITHM, AUDIENCE, ISSUER, Role, hash_password, issue_access_token
from core.settings import ApiSettings
from stack.local import Services
from tests.support import HTTP_TIMEOUT_S, serve_api

# One password, hashed once, for every test account: argon2 is slow on purpose.
PASSWORD = "correct horse battery staple"
PASSWORD_HASH = hash_password(PASSWORD)


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def api_settings(database: str, services: Services, jwt_secret: str) -> ApiSettings:
    return ApiSettings(
        database_url=database, jwt_secret=jwt_secret, mqtt_admin_url=services.mqtt_admin_url
    )


@pytest.fixture
def client(api_settings: ApiSettings) -> Iterator[httpx.Client]:
    """The API over a real socket, with the broker admin configured."""
    with (
        serve_api(api_settings) as base_url,
        httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S) as http,
    ):
        yield http


@dataclass
class Person:
    key: str
    id: uuid.UUID
    role: Role
    email: str
    token: str
    patient_id: uuid.UUID | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Cast:
    database_url: str
    secret: str
    people: dict[str, Person] = field(default_factory=dict)
    clinic: uuid.UUID | None = None
    other_clinic: uuid.UUID | None = None

    def __getitem__(self, key: str) -> Person:
        return self.people[key]

    @property
    def patient(self) -> Person:
        return self.people["patient"]


def _user(
    conn: psycopg.Connection[tuple[object, ...]], key: str, role: Role, secret: str
) -> Person:
    email = f"{key}@example.org"
    row = conn.execute(
        "INSERT INTO users (email, display_name, role, password_hash)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (email, f"Test {key}", role.value, PASSWORD_HASH),
    ).fetchone()
    assert row is not None
    user_id = row[0]
    assert isinstance(user_id, uuid.UUID)
    person = Person(key, user_id, role, email, issue_access_token(secret, user_id, role, _now()))
    if role is Role.PATIENT:
        row = conn.execute(
            "INSERT INTO patients (display_name, user_id) VALUES (%s, %s) RETURNING id",
            (f"Patient {key}", user_id),
        ).fetchone()
        assert row is not None and isinstance(row[0], uuid.UUID)
        person.patient_id = row[0]
    return person


def _now() -> datetime:
    return datetime.now(UTC)


def _grant(
    conn: psycopg.Connection[tuple[object, ...]],
    patient: uuid.UUID,
    *,
    user: uuid.UUID | None = None,
    org: uuid.UUID | None = None,
    scopes: list[str],
    status: str = "active",
    expires_at: datetime | None = None,
) -> None:
    conn.execute(
        "INSERT INTO grants (patient_id, grantee_user_id, grantee_organisation_id, scopes,"
        " status, expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (patient, user, org, scopes, status, expires_at),
    )


ALL_SCOPES = ["readings", "trends", "alerts", "exports", "care_plan"]


@pytest.fixture
def cast(database: str, jwt_secret: str) -> Cast:
    """The patient, and everyone who may or may not see them."""
    return make_cast(database, jwt_secret)


def make_cast(database: str, jwt_secret: str) -> Cast:
    found = Cast(database, jwt_secret)
    with psycopg.connect(database) as conn:
        for key, role in [
            ("patient", Role.PATIENT),
            ("other_patient", Role.PATIENT),
            ("nutritionist_granted", Role.NUTRITIONIST),
            ("nutritionist_ungranted", Role.NUTRITIONIST),
            ("nutritionist_readings_only", Role.NUTRITIONIST),
            ("nutritionist_expired", Role.NUTRITIONIST),
            ("nutritionist_revoked", Role.NUTRITIONIST),
            ("clinician_via_clinic", Role.CLINICIAN),
            ("clinic_admin_same", Role.CLINIC_ADMIN),
            ("clinic_admin_other", Role.CLINIC_ADMIN),
            ("caregiver_granted", Role.CAREGIVER),
            ("admin", Role.ADMIN),
        ]:
            found.people[key] = _user(conn, key, role, jwt_secret)
        clinics = [
            conn.execute(
                "INSERT INTO organisations (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()
            for name in ("North Clinic", "South Clinic")
        ]
        assert clinics[0] is not None and clinics[1] is not None
        found.clinic, found.other_clinic = clinics[0][0], clinics[1][0]  # type: ignore[assignment]
        for key, org in [
            ("clinician_via_clinic", found.clinic),
            ("clinic_admin_same", found.clinic),
            ("clinic_admin_other", found.other_clinic),
        ]:
            conn.execute(
                "INSERT INTO organisation_members (organisation_id, user_id) VALUES (%s, %s)",
                (org, found[key].id),
            )
        patient = found.patient.patient_id
        assert patient is not None
        _grant(conn, patient, user=found["nutritionist_granted"].id, scopes=ALL_SCOPES)
        _grant(conn, patient, user=found["caregiver_granted"].id, scopes=ALL_SCOPES)
        _grant(conn, patient, user=found["nutritionist_readings_only"].id, scopes=["readings"])
        _grant(
            conn,
            patient,
            user=found["nutritionist_expired"].id,
            scopes=ALL_SCOPES,
            expires_at=_now() - timedelta(minutes=1),
        )
        _grant(
            conn,
            patient,
            user=found["nutritionist_revoked"].id,
            scopes=ALL_SCOPES,
            status="revoked",
        )
        _grant(conn, patient, org=found.clinic, scopes=ALL_SCOPES)
        # The other patient shares with the clinic too: that must not open the first patient.
        other = found["other_patient"].patient_id
        _grant(conn, other, org=found.other_clinic, scopes=ALL_SCOPES)
    return found


def forged_token(user_id: uuid.UUID) -> str:
    """Right shape and claims, signed with a key the API does not have."""
    now = _now()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "role": "patient",
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return jwt.encode(claims, secrets.token_urlsafe(48), algorithm=ALGORITHM)


def expired_token(secret: str, user_id: uuid.UUID) -> str:
    """Signed with the API's own key, but long expired."""
    then = _now() - timedelta(hours=2)
    return issue_access_token(secret, user_id, Role.PATIENT, then)


def audit_rows(database_url: str, request_id: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return list(
            conn.execute(
                "SELECT actor_user_id, patient_id, action, client_address, grant_id, outcome"
                " FROM audit_log WHERE request_id = %s",
                (request_id,),
            )
        )
