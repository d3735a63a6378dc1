"""A client's public keys and the signed assertion it authenticates with (SMART App Launch
2.x, client-confidential-asymmetric): JWK Sets given at registration or fetched from the
client's URL, RS384 / ES384 signatures, the claims RFC 7523 section 3 and SMART require.

Everything but `fetch_jwks` is pure: an assertion and keys in, claims or a typed error out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

# SMART: the server validates at least one of RS384 / ES384; clients support both.
ALGORITHMS: Final = {"RS384": "RSA", "ES384": "EC"}
# SMART: the assertion's exp is "no more than five minutes in the future".
MAX_ASSERTION_LIFETIME: Final = timedelta(minutes=5)
# Clock difference tolerated between the client and this server.
CLOCK_SKEW: Final = timedelta(seconds=30)
# JWK members that only a private key has: a registered JWK Set must hold public keys only.
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# A client publishes a handful of keys (the current one and its successor).
MAX_KEYS: Final = 10
# A JWKS URL that does not answer this fast fails the token request, not the whole server.
JWKS_FETCH_TIMEOUT_S: Final = 5.0
ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_REQUIRED_MEMBERS: Final = {"RSA": ("n", "e"), "EC": ("crv", "x", "y")}
_CURVES: Final = {"P-384", "P-256", "P-521"}


class KeyProblem(ValueError):
    """A JWK Set that cannot be registered, or an assertion that does not authenticate."""


def check_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """A JWK Set of public RSA / EC keys, each with a kid unique in the set (SMART)."""
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise KeyProblem("a JWK Set has a non-empty 'keys' array")
    if len(keys) > MAX_KEYS:
        raise KeyProblem(f"at most {MAX_KEYS} keys")
    kids: set[str] = set()
    for index, key in enumerate(keys):
        if not isinstance(key, Mapping):
            raise KeyProblem(f"key {index} is not an object")
        kty, kid = key.get("kty"), key.get("kid")
        if kty not in _REQUIRED_MEMBERS:
            raise KeyProblem(f"key {index}: kty must be RSA or EC, not {kty!r}")
        if not isinstance(kid, str) or not kid:
            raise KeyProblem(f"key {index}: a kid is required")
        if kid in kids:
            raise KeyProblem(f"key {index}: kid {kid!r} appears twice")
        kids.add(kid)
        if PRIVATE_MEMBERS & set(key):
            raise KeyProblem(f"key {kid!r} holds private key material: register public keys only")
        missing = [m for m in _REQUIRED_MEMBERS[kty] if not key.get(m)]
        if missing:
            raise KeyProblem(f"key {kid!r}: {', '.join(missing)} required for {kty}")
        if kty == "EC" and key.get("crv") not in _CURVES:
            raise KeyProblem(f"key {kid!r}: curve {key.get('crv')!r} not supported")
        try:
            jwt.PyJWK(dict(key), "RS384" if kty == "RSA" else None)
        except jwt.PyJWTError as exc:
            raise KeyProblem(f"key {kid!r} cannot be read: {exc}") from exc
    return {"keys": [dict(k) for k in keys]}


def fetch_jwks(url: str) -> dict[str, Any]:
    """The client's JWK Set from its URL, fetched anew every time (SMART: never cached
    longer than the client's Cache-Control allows; not caching at all satisfies that)."""
    client = jwt.PyJWKClient(
        url,
        cache_jwk_set=False,
        cache_keys=False,
        headers={"Accept": "application/json"},
        timeout=JWKS_FETCH_TIMEOUT_S,
    )
    try:
        data = client.fetch_data()
    except jwt.PyJWKClientError as exc:
        raise KeyProblem(f"the client's JWK Set URL did not answer: {exc}") from exc
    if not isinstance(data, Mapping):
        raise KeyProblem("the client's JWK Set URL did not return a JWK Set")
    return check_jwks(data)


def unverified_client_id(assertion: str) -> uuid.UUID:
    """Who the assertion says it is (iss), to find their keys; nothing is trusted yet."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
        return uuid.UUID(str(claims.get("iss")))
    except (jwt.PyJWTError, ValueError) as exc:
        raise KeyProblem("the assertion is not a JWT naming a registered client as iss") from exc


def jku_of(assertion: str) -> str | None:
    try:
        found = jwt.get_unverified_header(assertion).get("jku")
    except jwt.PyJWTError as exc:
        raise KeyProblem("the assertion's header cannot be read") from exc
    return str(found) if found is not None else None


@dataclass(frozen=True)
class Assertion:
    client_id: uuid.UUID
    jti: str
    expires_at: datetime


def verify_assertion(
    assertion: str,
    jwks: Mapping[str, Any],
    client_id: uuid.UUID,
    token_url: str,
    now: datetime,
    *,
    registered_jwks_url: str | None = None,
) -> Assertion:
    """Check the signature with the one key whose kid and kty match the header, and the
    claims: iss = sub = client_id, aud = this token URL, exp at most five minutes ahead, a
    jti. SMART client-confidential-asymmetric, "Signature Verification"."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as exc:
        raise KeyProblem("the assertion's header cannot be read") from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise KeyProblem(f"alg {alg!r}: RS384 or ES384 required")
    if header.get("typ") != "JWT":
        raise KeyProblem("typ must be JWT")
    jku = header.get("jku")
    if jku is not None and jku != registered_jwks_url:
        raise KeyProblem("jku is not the JWK Set URL registered for this client")
    kid = header.get("kid")
    candidates = [
        k
        for k in jwks.get("keys", [])
        if isinstance(k, Mapping) and k.get("kid") == kid and k.get("kty") == ALGORITHMS[alg]
    ]
    if len(candidates) != 1:
        raise KeyProblem(f"no single registered {ALGORITHMS[alg]} key with kid {kid!r}")
    try:
        key = jwt.PyJWK(dict(candidates[0]), alg)
        claims = jwt.decode(
            assertion,
            key,
            algorithms=[alg],
            audience=token_url,
            issuer=str(client_id),
            leeway=CLOCK_SKEW,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise KeyProblem(f"the assertion does not verify: {exc}") from exc
    if claims.get("sub") != str(client_id):
        raise KeyProblem("sub must equal iss (the client id)")
    expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
    if expires_at > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise KeyProblem("exp is more than five minutes ahead")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise KeyProblem("a jti is required")
    return Assertion(client_id, jti, expires_at)
