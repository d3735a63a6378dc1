"""Sites and follower tokens in the database: created, rotated, deleted and revoked by the
patient (`api.nightscout.manage`), looked up by the credentials clients present
(`api.nightscout.gate`).

A follower token is a grant (`grants`, scope `readings`, naming the token's label), so it is
in force exactly when that grant is: active and not expired. Revoking the token revokes the
grant, and revoking the grant from the patient's grants list stops the token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from api.nightscout import credentials
from core.units import Unit

# The only scope a follower token carries: it reads readings (and the treatments and device
# status that come with them), nothing else.
FOLLOWER_SCOPE = "readings"

Conn = AsyncConnection[Any]


@dataclass(frozen=True)
class Site:
    id: uuid.UUID
    patient_id: uuid.UUID
    public_id: str
    unit: Unit


@dataclass(frozen=True)
class FollowerToken:
    id: uuid.UUID
    site: Site
    grant_id: uuid.UUID
    label: str
    in_force: bool


_SITE_COLUMNS = "s.id, s.patient_id, s.public_id, s.unit"


def _site(row: tuple[Any, ...]) -> Site:
    return Site(row[0], row[1], row[2], Unit(row[3]))


async def site_by_public_id(conn: Conn, public_id: str) -> Site | None:
    cur = await conn.execute(
        f"SELECT {_SITE_COLUMNS} FROM nightscout_sites s"
        " WHERE s.public_id = %s AND s.deleted_at IS NULL",
        (public_id,),
    )
    row = await cur.fetchone()
    return _site(row) if row else None


async def site_by_uploader(conn: Conn, presented: credentials.Presented) -> Site | None:
    column = (
        "uploader_sha512" if presented.kind is credentials.Kind.SECRET_SHA512 else "uploader_sha1"
    )
    cur = await conn.execute(
        f"SELECT {_SITE_COLUMNS} FROM nightscout_sites s"
        f" WHERE s.{column} = %s AND s.deleted_at IS NULL",
        (presented.value if column == "uploader_sha512" else presented.sha1,),
    )
    row = await cur.fetchone()
    return _site(row) if row else None


_TOKEN = f"""
SELECT t.id, {_SITE_COLUMNS}, t.grant_id, t.label,
       g.status = 'active' AND (g.expires_at IS NULL OR g.expires_at > now())
         AND %(scope)s = ANY (g.scopes) AS in_force
FROM nightscout_follower_tokens t
JOIN nightscout_sites s ON s.id = t.site_id AND s.deleted_at IS NULL
JOIN grants g ON g.id = t.grant_id
"""


async def _token(conn: Conn, where: str, params: dict[str, Any]) -> FollowerToken | None:
    cur = await conn.execute(_TOKEN + where, {"scope": FOLLOWER_SCOPE, **params})
    row = await cur.fetchone()
    if row is None:
        return None
    return FollowerToken(row[0], _site(row[1:5]), row[5], row[6], bool(row[7]))


async def token_by_sha1(conn: Conn, sha1: str) -> FollowerToken | None:
    return await _token(conn, "WHERE t.token_sha1 = %(sha1)s", {"sha1": sha1})


async def token_by_id(conn: Conn, token_id: uuid.UUID) -> FollowerToken | None:
    return await _token(conn, "WHERE t.id = %(id)s", {"id": token_id})


# -- the patient's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewSite:
    site: Site
    secret: credentials.UploaderSecret


async def active_site(conn: Conn, patient_id: uuid.UUID) -> Site | None:
    cur = await conn.execute(
        f"SELECT {_SITE_COLUMNS} FROM nightscout_sites s"
        " WHERE s.patient_id = %s AND s.deleted_at IS NULL",
        (patient_id,),
    )
    row = await cur.fetchone()
    return _site(row) if row else None


async def create_site(conn: Conn, patient_id: uuid.UUID, unit: Unit) -> NewSite | None:
    """A new site, or None when the patient already has one (one site per patient)."""
    secret = credentials.new_uploader_secret()
    cur = await conn.execute(
        "INSERT INTO nightscout_sites (patient_id, public_id, uploader_sha1, uploader_sha512,"
        " unit) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        " RETURNING id, patient_id, public_id, unit",
        (patient_id, credentials.new_site_id(), secret.sha1, secret.sha512, unit.value),
    )
    row = await cur.fetchone()
    return NewSite(_site(row), secret) if row else None


async def rotate_site(conn: Conn, patient_id: uuid.UUID, site_id: uuid.UUID) -> NewSite | None:
    """A new path and a new uploader secret; the old ones stop working at once. Follower
    tokens stay valid (they name the site themselves)."""
    secret = credentials.new_uploader_secret()
    cur = await conn.execute(
        "UPDATE nightscout_sites SET public_id = %s, uploader_sha1 = %s, uploader_sha512 = %s,"
        " rotated_at = now() WHERE id = %s AND patient_id = %s AND deleted_at IS NULL"
        " RETURNING id, patient_id, public_id, unit",
        (credentials.new_site_id(), secret.sha1, secret.sha512, site_id, patient_id),
    )
    row = await cur.fetchone()
    return NewSite(_site(row), secret) if row else None


async def delete_site(conn: Conn, patient_id: uuid.UUID, site_id: uuid.UUID) -> bool:
    """The site stops answering; its tokens' grants are revoked. Data already stored stays
    the patient's (uploaded readings are readings like any other)."""
    cur = await conn.execute(
        "UPDATE nightscout_sites SET deleted_at = now()"
        " WHERE id = %s AND patient_id = %s AND deleted_at IS NULL RETURNING id",
        (site_id, patient_id),
    )
    if await cur.fetchone() is None:
        return False
    await conn.execute(
        "UPDATE grants SET status = 'revoked', revoked_at = now()"
        " WHERE status = 'active' AND id IN"
        " (SELECT grant_id FROM nightscout_follower_tokens WHERE site_id = %s)",
        (site_id,),
    )
    return True


@dataclass(frozen=True)
class NewToken:
    id: uuid.UUID
    grant_id: uuid.UUID
    token: str


async def create_token(conn: Conn, site: Site, label: str, expires_at: datetime | None) -> NewToken:
    token = credentials.new_follower_token(label)
    cur = await conn.execute(
        "INSERT INTO grants (patient_id, grantee_label, scopes, status, expires_at, decided_at,"
        " note) VALUES (%s, %s, %s, 'active', %s, now(), %s) RETURNING id",
        (site.patient_id, label, [FOLLOWER_SCOPE], expires_at, "Nightscout follower token"),
    )
    grant = await cur.fetchone()
    assert grant is not None
    cur = await conn.execute(
        "INSERT INTO nightscout_follower_tokens (site_id, grant_id, label, token_sha1)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (site.id, grant[0], label, credentials.sha1_hex(token)),
    )
    row = await cur.fetchone()
    assert row is not None
    return NewToken(row[0], grant[0], token)


async def revoke_token(conn: Conn, site: Site, token_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "UPDATE grants SET status = 'revoked', revoked_at = now()"
        " WHERE status = 'active' AND id = (SELECT grant_id FROM nightscout_follower_tokens"
        "  WHERE id = %s AND site_id = %s) RETURNING id",
        (token_id, site.id),
    )
    return await cur.fetchone() is not None
