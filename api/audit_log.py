"""Writing the audit log: one row per access to a patient's data (or refused attempt), by
whoever made it, as the patient reads it in their access log (`api.audit`). The table refuses
UPDATE and DELETE (a trigger, migration 0004), so the log only grows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

ActorKind = Literal["user", "follower_token", "uploader", "fhir_client", "system"]
Outcome = Literal["allowed", "denied"]


@dataclass(frozen=True)
class AuditEntry:
    """One access to a patient's data, as the patient will read it in their access log."""

    patient_id: uuid.UUID
    action: str  # the route's name, e.g. list_readings
    method: str
    path: str
    request_id: str
    client_address: str | None
    actor_kind: ActorKind = "user"
    actor_user_id: uuid.UUID | None = None
    actor_role: str = ""  # a user's role; for other callers their kind
    actor_label: str | None = None  # the name of a token or a client
    grant_id: uuid.UUID | None = None
    outcome: Outcome = "allowed"


_RECORD = """
INSERT INTO audit_log (actor_user_id, actor_role, actor_kind, actor_label, patient_id, action,
                       method, path, client_address, request_id, grant_id, outcome)
VALUES (%(actor_user_id)s, %(actor_role)s, %(actor_kind)s, %(actor_label)s, %(patient_id)s,
        %(action)s, %(method)s, %(path)s, %(client_address)s, %(request_id)s, %(grant_id)s,
        %(outcome)s)
"""


async def record(conn: AsyncConnection[Any], entry: AuditEntry) -> None:
    """Append one row to the patient's access log (the only way rows are written)."""
    params = dict(entry.__dict__)
    params["actor_role"] = entry.actor_role or entry.actor_kind
    await conn.execute(_RECORD, params)
