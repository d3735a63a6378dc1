"""Who is calling: argon2 passwords, the OAuth2 password flow, short-lived JWT access tokens,
rotated refresh tokens, and login throttling kept in the database.

A route learns its caller through the `CurrentUser` dependency; what the caller may see of a
patient is decided in `api.access`, never here.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import APIRouter, Depends, Form, Request
from fastapi.security import OAuth2PasswordBearer
from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from api.problems import AUTH_RESPONSES, Problem, ProblemError, unauthenticated
from api.state import client_address, note_caller, pool_of, settings_of

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

# Short enough that a leaked access token is soon useless; revocation acts on refresh tokens.
ACCESS_TOKEN_TTL = timedelta(minutes=15)
# A signed-in app stays signed in for two weeks of disuse; every refresh rotates the token.
REFRESH_TOKEN_TTL = timedelta(days=14)
REFRESH_TOKEN_BYTES = 32  # 256 bits: stored as a plain SHA-256, no slow hash needed
# Clock skew tolerated between API processes when checking `exp` and `iat`.
TOKEN_LEEWAY = timedelta(seconds=30)
ISSUER = "glucobridge"
AUDIENCE = "glucobridge-api"
ALGORITHM = "HS256"

# Throttling: at most this many failed sign-ins per account, and per client address (which
# may be a clinic's NAT with many honest users, hence higher), within the window.
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 30
# NIST SP 800-63B: at least 8 characters; the upper bound keeps hashing cheap to refuse.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" profile
# Verified against when the account does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Role(StrEnum):
    PATIENT = "patient"
    CAREGIVER = "caregiver"
    NUTRITIONIST = "nutritionist"
    CLINICIAN = "clinician"
    CLINIC_ADMIN = "clinic_admin"
    ADMIN = "admin"  # runs the service: users and clinics, the research export; no patient data


# Roles whose members may be given a patient's data through a grant to their clinic.
CLINICAL_ROLES = frozenset({Role.NUTRITIONIST, Role.CLINICIAN})
# Roles a patient may grant access to directly.
GRANTEE_ROLES = frozenset({Role.CAREGIVER, Role.NUTRITIONIST, Role.CLINICIAN})

Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether the password is the account's (a re-entry before an irreversible act); argon2
    takes its time off the event loop."""
    return await asyncio.to_thread(_verify, stored, password)


@dataclass(frozen=True)
class Caller:
    id: uuid.UUID
    role: Role
    email: str
    display_name: str


INSERT_USER = """
INSERT INTO users (email, display_name, role, password_hash)
VALUES (%(email)s, %(name)s, %(role)s, %(hash)s)
ON CONFLICT DO NOTHING
RETURNING id
"""


async def insert_user(
    conn: AsyncConnection[Any], email: str, name: str, role: Role, password: str
) -> uuid.UUID | None:
    """A new user, or None when the e-mail address is taken."""
    hashed = await asyncio.to_thread(hash_password, password)
    cur = await conn.execute(
        INSERT_USER, {"email": email, "name": name, "role": role.value, "hash": hashed}
    )
    row = await cur.fetchone()
    return row[0] if row else None


# -- access tokens ---------------------------------------------------------------------------


def issue_access_token(secret: str, user_id: uuid.UUID, role: Role, now: datetime) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "role": role.value,
        "typ": "access",
        "iat": now,
        "exp": now + ACCESS_TOKEN_TTL,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def _subject(secret: str, token: str) -> uuid.UUID:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=TOKEN_LEEWAY,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise unauthenticated("the access token has expired; refresh it") from exc
    except jwt.PyJWTError as exc:
        raise unauthenticated("the access token is not valid") from exc
    if claims.get("typ") != "access":
        raise unauthenticated("not an access token")
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise unauthenticated("the access token is not valid") from exc


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def current_user(request: Request, token: Annotated[str | None, Depends(_bearer)]) -> Caller:
    if not token:
        raise unauthenticated()
    user_id = _subject(settings_of(request).jwt_secret, token)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT role, email, display_name FROM users WHERE id = %s AND NOT disabled",
            (user_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise unauthenticated("the account no longer exists or is disabled")
    note_caller(request, user_id)
    return Caller(user_id, Role(row[0]), row[1], row[2])


CurrentUser = Annotated[Caller, Depends(current_user)]


async def current_or_erased_user(
    request: Request, token: Annotated[str | None, Depends(_bearer)]
) -> Caller:
    """The signed-in user, or a patient whose account an erasure removed while their token
    was still valid (for the erase route only: a repeated erase answers as the first)."""
    try:
        return await current_user(request, token)
    except ProblemError:
        if not token:
            raise
        user_id = _subject(settings_of(request).jwt_secret, token)
        async with pool_of(request).connection() as conn:
            cur = await conn.execute("SELECT 1 FROM erasures WHERE user_id = %s", (user_id,))
            erased = await cur.fetchone()
        if erased is None:
            raise
        return Caller(user_id, Role.PATIENT, "", "")


def require_role(*roles: Role) -> Any:
    """A dependency letting only these roles through (403 otherwise)."""

    async def check(caller: CurrentUser) -> Caller:
        if caller.role not in roles:
            raise ProblemError(
                403, "forbidden", "Forbidden", f"only {', '.join(roles)} may do this"
            )
        return caller

    return Depends(check)


# -- refresh tokens ---------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _issue_refresh(
    conn: AsyncConnection[Any], user_id: uuid.UUID, family: uuid.UUID, now: datetime
) -> str:
    token = secrets.token_urlsafe(REFRESH_TOKEN_BYTES)
    await conn.execute(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s)",
        (user_id, family, _digest(token), now, now + REFRESH_TOKEN_TTL),
    )
    return token


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
                    "token_type": "bearer",
                    "expires_in": 900,
                    "refresh_token": "kq3V0fJx2v3bq2eB3S9...",
                }
            ]
        }
    }


def _invalid_grant(detail: str) -> ProblemError:
    return ProblemError(400, "invalid-grant", "Invalid grant", detail)


_FAILURES = """
SELECT
  (SELECT count(*) FROM login_attempts
    WHERE email = %(email)s AND NOT succeeded AND at > now() - %(window)s
      AND at > coalesce((SELECT max(at) FROM login_attempts
                         WHERE email = %(email)s AND succeeded), '-infinity')),
  (SELECT count(*) FROM login_attempts
    WHERE address = %(address)s AND NOT succeeded AND at > now() - %(window)s)
"""


async def _password_grant(request: Request, username: str, password: str) -> TokenOut:
    email = username.strip().lower()
    address = client_address(request) or "unknown"
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            _FAILURES, {"email": email, "address": address, "window": LOGIN_WINDOW}
        )
        row = await cur.fetchone()
        assert row is not None
        if row[0] >= MAX_FAILURES_PER_ACCOUNT or row[1] >= MAX_FAILURES_PER_ADDRESS:
            raise ProblemError(
                429,
                "too-many-attempts",
                "Too many sign-in attempts",
                "too many failed attempts; try again later",
                {"Retry-After": str(int(LOGIN_WINDOW.total_seconds()))},
            )
        cur = await conn.execute(
            "SELECT id, role, password_hash FROM users WHERE lower(email) = %s AND NOT disabled",
            (email,),
        )
        user = await cur.fetchone()
        ok = await asyncio.to_thread(_verify, user[2] if user else None, password)
        await conn.execute(
            "INSERT INTO login_attempts (email, address, succeeded) VALUES (%s, %s, %s)",
            (email, address, ok),
        )
        if not ok or user is None:
            await conn.commit()
            raise _invalid_grant("wrong e-mail address or password")
        now = datetime.now(UTC)
        refresh = await _issue_refresh(conn, user[0], uuid.uuid4(), now)
    secret = settings_of(request).jwt_secret
    return TokenOut(
        access_token=issue_access_token(secret, user[0], Role(user[1]), now),
        expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
        refresh_token=refresh,
    )


async def _refresh_grant(request: Request, token: str) -> TokenOut:
    now = datetime.now(UTC)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at, t.revoked_at, u.role"
            " FROM refresh_tokens t JOIN users u ON u.id = t.user_id AND NOT u.disabled"
            " WHERE t.token_hash = %s FOR UPDATE OF t",
            (_digest(token),),
        )
        row = await cur.fetchone()
        if row is None:
            raise _invalid_grant("unknown refresh token")
        token_id, user_id, family, expires_at, used_at, revoked_at, role = row
        if used_at is not None:
            # A used token presented again: someone holds a copy. End the whole sign-in.
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now()"
                " WHERE family_id = %s AND revoked_at IS NULL",
                (family,),
            )
            await conn.commit()
            raise _invalid_grant("refresh token already used; signed out everywhere it was")
        if revoked_at is not None or expires_at <= now:
            raise _invalid_grant("refresh token revoked or expired")
        await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (token_id,))
        refresh = await _issue_refresh(conn, user_id, family, now)
    return TokenOut(
        access_token=issue_access_token(settings_of(request).jwt_secret, user_id, Role(role), now),
        expires_in=int(ACCESS_TOKEN_TTL.total_seconds()),
        refresh_token=refresh,
    )


@router.post(
    "/token",
    response_model=TokenOut,
    summary="Sign in (OAuth2 password grant) or refresh (refresh_token grant)",
    responses={
        400: {"model": Problem, "description": "Wrong credentials, or a bad refresh token"},
        429: {"model": Problem, "description": "Too many failed attempts; see Retry-After"},
    },
)
async def token(
    request: Request,
    grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
    username: Annotated[str | None, Form(max_length=320)] = None,
    password: Annotated[str | None, Form(max_length=MAX_PASSWORD_LENGTH)] = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str, Form(description="ignored: access follows the patient's grants")] = "",
) -> TokenOut:
    if grant_type == "password":
        if not username or not password or "\x00" in username:
            raise _invalid_grant("username and password are required")
        return await _password_grant(request, username, password)
    if not refresh_token:
        raise _invalid_grant("refresh_token is required")
    return await _refresh_grant(request, refresh_token)


@router.post(
    "/revoke",
    status_code=204,
    summary="Sign out: revoke a refresh token and every token rotated from it",
    responses=AUTH_RESPONSES,
)
async def revoke(
    request: Request,
    caller: CurrentUser,
    refresh_token: Annotated[str, Form(max_length=200)],
) -> None:
    async with pool_of(request).connection() as conn:
        await conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL"
            " AND family_id = (SELECT family_id FROM refresh_tokens"
            "                  WHERE token_hash = %s AND user_id = %s)",
            (_digest(refresh_token), caller.id),
        )
