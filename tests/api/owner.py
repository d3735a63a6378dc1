"""A bearer token for a patient record made outside the API (tests/support.add_patient):
a patient account is attached to it and a token minted with the API's settings' secret."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg

from api.auth import Role, issue_access_token
from core.settings import DEV_JWT_SECRET

# Not a usable password hash: these accounts sign in only through minted tokens.
NO_PASSWORD = "!"


def owner_auth(
    database_url: str, patient_id: str | uuid.UUID, secret: str = DEV_JWT_SECRET
) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO users (email, display_name, role, password_hash)"
            " VALUES (%s, 'patient', 'patient', %s) RETURNING id",
            (f"owner-{patient_id}@example.org", NO_PASSWORD),
        ).fetchone()
        assert row is not None
        conn.execute("UPDATE patients SET user_id = %s WHERE id = %s", (row[0], patient_id))
    token = issue_access_token(secret, row[0], Role.PATIENT, datetime.now(UTC))
    return {"Authorization": f"Bearer {token}"}
