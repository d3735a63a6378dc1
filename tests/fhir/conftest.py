"""Fixtures for the FHIR endpoint: the API over a real socket, a clinic with its admin, a
patient who granted the clinic access (and one who did not), hospital clients registered
through the API with keys generated here, and readings written through the one intake."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import Role, issue_access_token
from api.fhir.keys import ASSERTION_TYPE
from core.contract import MeterInfo
from core.intake import decode_items, write
from core.settings import ApiSettings
from tests.support import serve_api

# Not a usable password hash: these accounts act through minted tokens only.
NO_PASSWORD = "!"
FHIR = "/fhir/r4"
ALL_SCOPES = ["readings", "trends", "alerts", "exports"]
CLIENT_SCOPES = [
    "system/Patient.rs",
    "system/Observation.crs",
    "system/Device.rs",
    "system/DiagnosticReport.rs",
]


@pytest.fixture(scope="session")
def secret() -> str:
    return secrets.token_urlsafe(48)


@pytest.fixture
def base_url(database: str, secret: str) -> Iterator[str]:
    with serve_api(ApiSettings(database_url=database, jwt_secret=secret)) as url:
        yield url


@pytest.fixture
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        yield client


@dataclass
class User:
    id: uuid.UUID
    token: str
    patient_id: uuid.UUID | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    database_url: str
    secret: str
    clinic: uuid.UUID
    other_clinic: uuid.UUID
    admin: User  # clinic admin of `clinic`
    other_admin: User  # clinic admin of `other_clinic`
    patient: User  # granted `clinic` every scope
    stranger: User  # a patient who granted nothing

    @property
    def patient_id(self) -> uuid.UUID:
        assert self.patient.patient_id is not None
        return self.patient.patient_id

    @property
    def stranger_id(self) -> uuid.UUID:
        assert self.stranger.patient_id is not None
        return self.stranger.patient_id


def _user(conn: psycopg.Connection[Any], secret: str, role: Role, name: str) -> User:
    row = conn.execute(
        "INSERT INTO users (email, display_name, role, password_hash) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (f"{uuid.uuid4().hex}@example.org", name, role.value, NO_PASSWORD),
    ).fetchone()
    assert row is not None
    user = User(row[0], issue_access_token(secret, row[0], role, datetime.now(UTC)))
    if role is Role.PATIENT:
        found = conn.execute(
            "INSERT INTO patients (display_name, user_id, timezone) VALUES (%s, %s, 'UTC')"
            " RETURNING id",
            (name, user.id),
        ).fetchone()
        assert found is not None
        user.patient_id = found[0]
    return user


def grant(
    database_url: str,
    patient: uuid.UUID,
    organisation: uuid.UUID,
    scopes: list[str],
    expires_at: datetime | None = None,
) -> uuid.UUID:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO grants (patient_id, grantee_organisation_id, scopes, status, expires_at)"
            " VALUES (%s, %s, %s, 'active', %s) RETURNING id",
            (patient, organisation, scopes, expires_at),
        ).fetchone()
    assert row is not None
    return uuid.UUID(str(row[0]))


@pytest.fixture
def world(database: str, secret: str) -> World:
    with psycopg.connect(database) as conn:
        clinics = []
        for name in ("North Clinic", "South Clinic"):
            row = conn.execute(
                "INSERT INTO organisations (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()
            assert row is not None
            clinics.append(row[0])
        admin = _user(conn, secret, Role.CLINIC_ADMIN, "North admin")
        other_admin = _user(conn, secret, Role.CLINIC_ADMIN, "South admin")
        for user, clinic in ((admin, clinics[0]), (other_admin, clinics[1])):
            conn.execute(
                "INSERT INTO organisation_members (organisation_id, user_id) VALUES (%s, %s)",
                (clinic, user.id),
            )
        patient = _user(conn, secret, Role.PATIENT, "Wang Fang")
        stranger = _user(conn, secret, Role.PATIENT, "Li Lei")
    found = World(database, secret, clinics[0], clinics[1], admin, other_admin, patient, stranger)
    grant(database, found.patient_id, found.clinic, ALL_SCOPES)
    return found


# -- a hospital client's keys ----------------------------------------------------------------


@dataclass
class HospitalKey:
    """A key pair a hospital system generates; only the public half is registered."""

    alg: Literal["ES384", "RS384"]
    private: Any
    kid: str

    @classmethod
    def generate(cls, alg: Literal["ES384", "RS384"] = "ES384") -> HospitalKey:
        if alg == "ES384":
            private: Any = ec.generate_private_key(ec.SECP384R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(alg, private, uuid.uuid4().hex)

    def jwks(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        public = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": self.alg, "use": "sig"}]}

    def assertion(
        self,
        client_id: uuid.UUID | str,
        token_url: str,
        *,
        jti: str | None = None,
        lifetime: timedelta = timedelta(minutes=4),
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = datetime.now(UTC)
        body = {
            "iss": str(client_id),
            "sub": str(client_id),
            "aud": token_url,
            "exp": now + lifetime,
            "jti": jti or uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode(
            body, self.private, algorithm=self.alg, headers={"kid": self.kid, **(headers or {})}
        )


def register(
    http: httpx.Client,
    admin: User,
    clinic: uuid.UUID,
    key: HospitalKey | None = None,
    *,
    name: str = "North Hospital EHR",
    scopes: list[str] | None = None,
    jwks_url: str | None = None,
) -> uuid.UUID:
    body: dict[str, Any] = {"name": name, "scopes": scopes or CLIENT_SCOPES}
    if jwks_url is not None:
        body["jwks_url"] = jwks_url
    else:
        assert key is not None
        body["jwks"] = key.jwks()
    response = http.post(
        f"/api/v1/organisations/{clinic}/fhir-clients", json=body, headers=admin.auth
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["client_id"])


def token_url(http: httpx.Client) -> str:
    return str(http.base_url).rstrip("/") + FHIR + "/auth/token"


def request_token(
    http: httpx.Client, key: HospitalKey, client_id: uuid.UUID, scope: str, **kwargs: Any
) -> httpx.Response:
    return http.post(
        FHIR + "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": key.assertion(client_id, token_url(http), **kwargs),
            "scope": scope,
        },
    )


def access_token(http: httpx.Client, key: HospitalKey, client_id: uuid.UUID, scope: str) -> str:
    response = request_token(http, key, client_id, scope)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


# -- readings through the one intake --------------------------------------------------------


def store_readings(
    database_url: str,
    patient: uuid.UUID,
    serial: str,
    readings: list[dict[str, Any]],
    *,
    manufacturer: str | None = None,
    model: str | None = None,
) -> None:
    """Readings (core.contract.WireReading fields) from a device the patient owns."""
    decoded = decode_items(
        "tests/fhir",
        b"",
        "tests-fhir",
        uuid.uuid4(),
        MeterInfo(serial=serial, manufacturer=manufacturer, model=model),
        readings,
        patient_id=patient,
        claims_device=True,
    )
    assert not decoded.rejected, decoded.rejected
    with psycopg.connect(database_url) as conn:
        write(conn, [decoded], [])


def access_log(http: httpx.Client, patient: User) -> list[dict[str, Any]]:
    """The patient's access log as they read it, newest first (every page)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        response = http.get(
            f"/api/v1/patients/{patient.patient_id}/access-log", params=params, headers=patient.auth
        )
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
