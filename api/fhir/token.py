"""SMART Backend Services: discovery, the token endpoint, and the access tokens it issues.

A client posts `grant_type=client_credentials` with a one-time assertion signed by one of
its registered keys (RS384 / ES384) and the scopes it wants; it gets a bearer token good for
five minutes carrying the scopes it asked for that its registration allows. Every FHIR
request then presents the token; the client is looked up again each time, so a revoked
client is refused at once, and its scopes can only narrow.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import jwt
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse

from api.fhir.errors import OAuthError, unauthenticated
from api.fhir.keys import (
    ALGORITHMS,
    ASSERTION_TYPE,
    KeyProblem,
    fetch_jwks,
    jku_of,
    unverified_client_id,
    verify_assertion,
)
from api.fhir.scopes import SCOPES_SUPPORTED, Scopes
from api.state import pool_of, settings_of

router = APIRouter()

# SMART Backend Services: "the expires_in value SHOULD NOT exceed 300".
ACCESS_TOKEN_TTL: Final = timedelta(seconds=300)
ISSUER: Final = "glucobridge"
# Distinct from the user tokens' audience (api.auth): one kind is never taken for the other.
AUDIENCE: Final = "glucobridge-fhir"
TOKEN_TYPE: Final = "fhir_access"  # noqa: S105 - a claim value, not a secret
ALGORITHM: Final = "HS256"
LEEWAY: Final = timedelta(seconds=30)
TOKEN_PATH: Final = "/auth/token"  # noqa: S105 - a path, not a secret


# Where the FHIR app is mounted on the API.
BASE_PATH: Final = "/fhir/r4"


def fhir_base(request: Request) -> str:
    """The FHIR base URL as the client reached the server (Starlette's base URL of a mounted
    app is the server's root, so the mount point is added here)."""
    return str(request.base_url).rstrip("/") + BASE_PATH


def token_url(request: Request) -> str:
    return fhir_base(request) + TOKEN_PATH


def smart_configuration(base: str) -> dict[str, Any]:
    return {
        "token_endpoint": base + TOKEN_PATH,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": ["client-confidential-asymmetric", "permission-v2", "permission-v1"],
        "code_challenge_methods_supported": ["S256"],
    }


@router.get(
    "/.well-known/smart-configuration",
    summary="SMART discovery: the token endpoint, authentication methods, scopes",
)
async def well_known(request: Request) -> JSONResponse:
    # SMART: "servers SHALL respond with application/json" whatever the Accept header.
    return JSONResponse(smart_configuration(fhir_base(request)))


@dataclass(frozen=True)
class RegisteredClient:
    id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    scopes: Scopes
    jwks: dict[str, Any] | None
    jwks_url: str | None


_CLIENT = """
SELECT id, organisation_id, name, scopes, jwks, jwks_url FROM fhir_clients
WHERE id = %s AND revoked_at IS NULL
"""
# One assertion, one token: a jti seen before (and not yet expired) is a replay.
_SEEN_JTI = """
WITH expired AS (DELETE FROM fhir_assertion_jtis WHERE expires_at < now())
INSERT INTO fhir_assertion_jtis (client_id, jti, expires_at) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING RETURNING 1
"""


async def registered_client(request: Request, client_id: uuid.UUID) -> RegisteredClient | None:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_CLIENT, (client_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return RegisteredClient(row[0], row[1], row[2], Scopes.parse(row[3]), row[4], row[5])


def _invalid_client(reason: str) -> OAuthError:
    # RFC 6749 section 5.2: invalid_client answers 401.
    return OAuthError("invalid_client", reason, 401)


@router.post(
    TOKEN_PATH,
    name="fhir_token",
    summary="OAuth2 client credentials with a signed JWT assertion (SMART Backend Services)",
)
async def token(
    request: Request,
    grant_type: Annotated[str, Form()],
    client_assertion_type: Annotated[str, Form()],
    client_assertion: Annotated[str, Form(max_length=16_000)],
    scope: Annotated[str, Form(max_length=2000)],
) -> JSONResponse:
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", "only client_credentials is supported")
    if client_assertion_type != ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    now = datetime.now(UTC)
    try:
        client_id = unverified_client_id(client_assertion)
    except KeyProblem as exc:
        raise _invalid_client(str(exc)) from exc
    client = await registered_client(request, client_id)
    if client is None:
        raise _invalid_client("no such client, or it was revoked")
    try:
        if client.jwks is not None:
            keys = client.jwks
        else:
            assert client.jwks_url is not None
            jku = jku_of(client_assertion)
            if jku is not None and jku != client.jwks_url:
                # Checked before anything is fetched: only the registered URL is ever read.
                raise KeyProblem("jku is not the JWK Set URL registered for this client")
            keys = await asyncio.to_thread(fetch_jwks, client.jwks_url)
        assertion = verify_assertion(
            client_assertion,
            keys,
            client.id,
            token_url(request),
            now,
            registered_jwks_url=client.jwks_url,
        )
    except KeyProblem as exc:
        raise _invalid_client(str(exc)) from exc
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_SEEN_JTI, (client.id, assertion.jti, assertion.expires_at))
        fresh = await cur.fetchone() is not None
    if not fresh:
        raise _invalid_client("this assertion was used before (jti seen): sign a new one")
    granted = Scopes.parse(scope, strict=False).within(client.scopes)
    if not granted:
        raise OAuthError(
            "invalid_scope", f"none of the scopes asked for is allowed; allowed: {client.scopes}"
        )
    access = jwt.encode(
        {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(client.id),
            "typ": TOKEN_TYPE,
            "scope": str(granted),
            "iat": now,
            "exp": now + ACCESS_TOKEN_TTL,
            "jti": uuid.uuid4().hex,
        },
        settings_of(request).jwt_secret,
        algorithm=ALGORITHM,
    )
    return JSONResponse(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
            "scope": str(granted),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


# -- the caller of a FHIR route --------------------------------------------------------------


@dataclass(frozen=True)
class FhirCaller:
    client_id: uuid.UUID
    organisation_id: uuid.UUID
    name: str
    scopes: Scopes  # the token's scopes that the registration still allows


async def fhir_caller(request: Request) -> FhirCaller:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials:
        raise unauthenticated()
    try:
        claims = jwt.decode(
            credentials,
            settings_of(request).jwt_secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "sub", "typ", "scope"]},
        )
        client_id = uuid.UUID(str(claims["sub"]))
    except jwt.ExpiredSignatureError as exc:
        raise unauthenticated("the access token has expired: get a new one") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise unauthenticated("the access token is not valid") from exc
    if claims.get("typ") != TOKEN_TYPE:
        raise unauthenticated("not a FHIR access token")
    client = await registered_client(request, client_id)
    if client is None:
        raise unauthenticated("the client was revoked")
    scopes = Scopes.parse(str(claims["scope"]), strict=False).within(client.scopes)
    return FhirCaller(client.id, client.organisation_id, client.name, scopes)


CurrentClient = Annotated[FhirCaller, Depends(fhir_caller)]
