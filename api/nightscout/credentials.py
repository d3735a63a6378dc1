"""What a Nightscout client presents to prove who it is, and the secrets it is checked against.
Pure: request parts in, digests out.

Clients send credentials the ways Nightscout accepts them (cgm-remote-monitor
lib/authorization/index.js `apiSecretFromRequest`, `extractJWTfromRequest`, and
lib/authorization/storage.js `findSubject`):

- `api-secret` header (or `?secret=`): the SHA-1 hex of the uploader secret (xDrip+, Juggluco,
  the LibreLinkUp uploader, xDrip4iOS) or its SHA-512 hex; or a follower token itself, or
  the SHA-1 hex of a token (xDrip+'s follower puts the token where the secret goes and hashes
  it); py-nightscout sends `token=<token>` there.
- `?token=<token>`: a follower token (xDrip4iOS's follower), or a JWT from the v2 exchange.
- `Authorization: Bearer <JWT>`: the JWT `GET /api/v2/authorization/request/{token}` issued.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
SHA512_HEX = re.compile(r"^[0-9a-fA-F]{128}$")
# A JWT: three base64url parts.
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# py-nightscout's way of putting a token in the api-secret header.
TOKEN_PREFIX = "token="  # noqa: S105 - a field name, not a secret
# Anything longer is not a credential this server issued; refuse before hashing it.
MAX_CREDENTIAL_LENGTH = 512

# Uploader secrets: 192 random bits, URL-safe, because apps take them inside a URL
# (xDrip+: https://SECRET@host/api/v1/). Nightscout asks for at least 12 characters.
UPLOADER_SECRET_BYTES = 24
# Follower tokens: Nightscout's shape, `<name>-<hex>`, with 128 random bits instead of 64
# (its findSubject wants at least 16 hex digits after the last '-').
TOKEN_RANDOM_BYTES = 16
TOKEN_NAME_LENGTH = 10  # Nightscout abbreviates the subject's name to 10 characters
# The site's path segment: 128 random bits in hex, unguessable and safe in any URL.
SITE_ID_BYTES = 16


class Kind(StrEnum):
    """Which secret a presented value is checked against (names, not secrets)."""

    SECRET_SHA1 = "secret_sha1"  # noqa: S105 - SHA-1 hex: the uploader secret's, or a token's
    SECRET_SHA512 = "secret_sha512"  # noqa: S105 - SHA-512 hex of the uploader secret
    TOKEN = "token"  # noqa: S105 - a follower token in the clear
    JWT = "jwt"  # a JWT from the v2 exchange


@dataclass(frozen=True)
class Presented:
    """One credential as the request carried it."""

    kind: Kind
    value: str

    @property
    def sha1(self) -> str:
        """The digest the stores are searched by: the value itself when it is already a
        SHA-1 hex, else the SHA-1 of the token."""
        if self.kind is Kind.SECRET_SHA1:
            return self.value.lower()
        return sha1_hex(self.value)


def sha1_hex(value: str) -> str:
    return hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()


def sha512_hex(value: str) -> str:
    return hashlib.sha512(value.encode()).hexdigest()


def _from_secret_field(raw: str) -> Presented:
    value = raw.strip()
    if value.startswith(TOKEN_PREFIX):
        return Presented(Kind.TOKEN, value[len(TOKEN_PREFIX) :])
    if SHA1_HEX.fullmatch(value):
        return Presented(Kind.SECRET_SHA1, value.lower())
    if SHA512_HEX.fullmatch(value):
        return Presented(Kind.SECRET_SHA512, value.lower())
    return Presented(Kind.TOKEN, value)


def presented(
    api_secret: str | None, secret_query: str | None, token_query: str | None, bearer: str | None
) -> list[Presented]:
    """Every credential the request carries, in the order they are tried (Nightscout tries
    the secret first). Empty: the request is anonymous. Values that are too long or empty
    are kept as tokens that will match nothing, so they still count as a failed attempt."""
    found: list[Presented] = []
    for raw in (api_secret, secret_query):
        if raw is not None and raw.strip() and raw.strip() != "null":
            found.append(_from_secret_field(raw[:MAX_CREDENTIAL_LENGTH]))
    if token_query is not None and token_query.strip():
        value = token_query.strip()[:MAX_CREDENTIAL_LENGTH]
        found.append(Presented(Kind.JWT if JWT_SHAPE.fullmatch(value) else Kind.TOKEN, value))
    if bearer is not None and bearer.strip():
        found.append(Presented(Kind.JWT, bearer.strip()[:MAX_CREDENTIAL_LENGTH]))
    return found


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (Nightscout's own split)."""
    if authorization is None:
        return None
    parts = authorization.split(" ")
    if len(parts) == 2 and parts[0] == "Bearer":
        return parts[1]
    return None


@dataclass(frozen=True)
class UploaderSecret:
    """A new uploader secret: the clear value is shown once, the digests are kept."""

    value: str

    @property
    def sha1(self) -> str:
        return sha1_hex(self.value)

    @property
    def sha512(self) -> str:
        return sha512_hex(self.value)


def new_uploader_secret() -> UploaderSecret:
    return UploaderSecret(secrets.token_urlsafe(UPLOADER_SECRET_BYTES))


def new_follower_token(label: str) -> str:
    """`<name>-<32 hex>`: the name is the label's letters and digits, as Nightscout does."""
    name = re.sub(r"[^a-z0-9]", "", label.lower())[:TOKEN_NAME_LENGTH] or "follower"
    return f"{name}-{secrets.token_hex(TOKEN_RANDOM_BYTES)}"


def new_site_id() -> str:
    return secrets.token_hex(SITE_ID_BYTES)
