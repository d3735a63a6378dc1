"""The one gate in front of every Nightscout route: who is calling, for which site, may they
do this, and the audit row.

The site comes from the path (`/ns/{site}/...`) or, for clients that drop the path of the URL
they were given (xDrip+'s follower asks for `/api/v1/entries.json` from the host's root,
xDrip4iOS's follower for `/api/v1/entries/sgv.json`, the LibreLinkUp uploader posts to
`/api/v1/entries`), from the credential alone: every secret and token belongs to one site.

- The uploader secret reads and writes (it is the patient's own app, as Nightscout's
  API_SECRET); a follower token only reads, while its grant is in force.
- Every allowed request writes one row in the patient's access log (`actor_kind` `uploader`
  or `follower_token`, the token's label, its grant); every refused one whose site is known
  writes a `denied` row there.
- Every refusal is the same 401 (a missing, wrong, revoked or foreign credential, a site
  that does not exist). Refused credentials from one address are counted, and past
  `MAX_FAILURES_PER_ADDRESS` in the sign-in window the address gets 429 until the window
  has passed, as sign-ins are throttled (`api.auth`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import Request

from api import audit_log as audit
from api.access import request_id_of
from api.auth import ALGORITHM, ISSUER, LOGIN_WINDOW, TOKEN_LEEWAY
from api.nightscout import credentials, sites
from api.nightscout.credentials import Kind, Presented
from api.nightscout.errors import NightscoutError, too_many, unauthorized
from api.nightscout.sites import Conn, Site
from api.state import client_address, pool_of, settings_of

# Refused credentials per client address within api.auth.LOGIN_WINDOW before the address is
# turned away. Higher than sign-in's 30: one home's phone, watch and Home Assistant share an
# address, and an app left with a revoked token retries every few minutes.
MAX_FAILURES_PER_ADDRESS = 60
# The v2 exchange's JWT lives as long as Nightscout's (lib/server/enclave.js signJWT: '8h');
# its audience keeps it from ever passing as an API access token, and the reverse.
JWT_TTL = timedelta(hours=8)
JWT_AUDIENCE = "glucobridge-nightscout"
JWT_TYPE = "nightscout-follower"
UPLOADER_LABEL = "Nightscout uploader"
# Parts of a path that are credentials themselves (the v2 exchange) never reach the log.
REDACTED = "…"


@dataclass(frozen=True)
class SiteAccess:
    site: Site
    actor_kind: audit.ActorKind
    label: str
    grant_id: uuid.UUID | None
    token_id: uuid.UUID | None
    request_id: str

    @property
    def patient_id(self) -> uuid.UUID:
        return self.site.patient_id

    @property
    def may_write(self) -> bool:
        return self.actor_kind == "uploader"


@dataclass(frozen=True)
class _Candidate:
    """What one presented credential turned out to be."""

    site: Site
    actor_kind: audit.ActorKind
    label: str
    grant_id: uuid.UUID | None = None
    token_id: uuid.UUID | None = None
    in_force: bool = True


def issue_jwt(secret: str, token: sites.FollowerToken, now: datetime) -> tuple[str, int, int]:
    """(jwt, iat, exp) for the v2 exchange."""
    iat = int(now.timestamp())
    exp = int((now + JWT_TTL).timestamp())
    claims = {
        "iss": ISSUER,
        "aud": JWT_AUDIENCE,
        "typ": JWT_TYPE,
        "sub": str(token.id),
        "site": str(token.site.id),
        "iat": iat,
        "exp": exp,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), iat, exp


def _token_id_of(secret: str, value: str) -> uuid.UUID | None:
    try:
        claims = jwt.decode(
            value,
            secret,
            algorithms=[ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=ISSUER,
            leeway=TOKEN_LEEWAY,
            options={"require": ["exp", "iat", "sub", "typ"]},
        )
        if claims.get("typ") != JWT_TYPE:
            return None
        return uuid.UUID(str(claims["sub"]))
    except (jwt.PyJWTError, ValueError):
        return None


def _follower(token: sites.FollowerToken) -> _Candidate:
    return _Candidate(
        token.site, "follower_token", token.label, token.grant_id, token.id, token.in_force
    )


async def _candidate(conn: Conn, jwt_secret: str, cred: Presented) -> _Candidate | None:
    if cred.kind is Kind.JWT:
        token_id = _token_id_of(jwt_secret, cred.value)
        found = await sites.token_by_id(conn, token_id) if token_id else None
        return _follower(found) if found else None
    if cred.kind in (Kind.SECRET_SHA1, Kind.SECRET_SHA512):
        site = await sites.site_by_uploader(conn, cred)
        if site is not None:
            return _Candidate(site, "uploader", UPLOADER_LABEL)
        if cred.kind is Kind.SECRET_SHA512:
            return None
    found = await sites.token_by_sha1(conn, cred.sha1)
    return _follower(found) if found else None


_FAILURES = """
SELECT count(*) FROM nightscout_auth_failures WHERE address = %s AND at > now() - %s
"""


# One row per refused credential; the address's rows older than the window go at the same
# time, so the table holds at most one window of failures per address.
_FAILED = """
WITH pruned AS (
    DELETE FROM nightscout_auth_failures
    WHERE address = %(address)s AND at <= now() - %(window)s
)
INSERT INTO nightscout_auth_failures (address) VALUES (%(address)s)
"""


def _logged_path(request: Request) -> str:
    path = request.url.path
    token = request.path_params.get("token")
    return path.replace(token, REDACTED) if isinstance(token, str) and token else path


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "name", None) or request.url.path)


def _entry(
    request: Request,
    site: Site,
    kind: audit.ActorKind,
    label: str,
    grant_id: uuid.UUID | None,
    outcome: audit.Outcome,
) -> audit.AuditEntry:
    return audit.AuditEntry(
        patient_id=site.patient_id,
        action=_action(request),
        method=request.method,
        path=_logged_path(request),
        request_id=request_id_of(request),
        client_address=client_address(request),
        actor_kind=kind,
        actor_label=label,
        grant_id=grant_id,
        outcome=outcome,
    )


def _refused_label(presented: list[Presented], candidate: _Candidate | None) -> str:
    if candidate is not None:
        return candidate.label
    if not presented:
        return "no credentials"
    return "unknown credentials"


async def _resolve(request: Request, write: bool) -> SiteAccess:
    address = client_address(request) or "unknown"
    public_id = request.path_params.get("site")
    presented = credentials.presented(
        request.headers.get("api-secret"),
        request.query_params.get("secret"),
        request.query_params.get("token"),
        credentials.bearer_of(request.headers.get("authorization")),
    )
    # The v2 exchange carries its token in the path (GET /api/v2/authorization/request/{token}).
    path_token = request.path_params.get("token")
    if isinstance(path_token, str) and path_token.strip():
        value = path_token.strip()[: credentials.MAX_CREDENTIAL_LENGTH]
        presented.insert(0, Presented(Kind.TOKEN, value))
    jwt_secret = settings_of(request).jwt_secret
    refusal: NightscoutError | None = None
    granted: SiteAccess | None = None
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_FAILURES, (address, LOGIN_WINDOW))
        row = await cur.fetchone()
        if row is not None and row[0] >= MAX_FAILURES_PER_ADDRESS:
            raise too_many(int(LOGIN_WINDOW.total_seconds()))
        path_site = (
            await sites.site_by_public_id(conn, public_id) if isinstance(public_id, str) else None
        )
        chosen: _Candidate | None = None  # the credential that names this site, in force or not
        for cred in presented:
            candidate = await _candidate(conn, jwt_secret, cred)
            if candidate is None or (public_id is not None and candidate.site != path_site):
                continue
            if chosen is None or (candidate.in_force and not chosen.in_force):
                chosen = candidate
        known_site = path_site if public_id is not None else (chosen.site if chosen else None)
        if (
            chosen is not None
            and chosen.in_force
            and (chosen.actor_kind == "uploader" or not write)
        ):
            granted = SiteAccess(
                chosen.site,
                chosen.actor_kind,
                chosen.label,
                chosen.grant_id,
                chosen.token_id,
                request_id_of(request),
            )
            await audit.record(
                conn,
                _entry(
                    request,
                    chosen.site,
                    chosen.actor_kind,
                    chosen.label,
                    chosen.grant_id,
                    "allowed",
                ),
            )
        else:
            refusal = unauthorized()
            # A good credential asking for more than it may (a follower posting) is not a
            # guess: only credentials that name nothing in force count toward the throttle.
            if presented and (chosen is None or not chosen.in_force):
                await conn.execute(_FAILED, {"address": address, "window": LOGIN_WINDOW})
            if known_site is not None:
                kind: audit.ActorKind = (
                    chosen.actor_kind
                    if chosen is not None
                    else ("uploader" if write else "follower_token")
                )
                await audit.record(
                    conn,
                    _entry(
                        request,
                        known_site,
                        kind,
                        _refused_label(presented, chosen),
                        chosen.grant_id if chosen else None,
                        "denied",
                    ),
                )
    if refusal is not None:
        raise refusal
    assert granted is not None
    return granted


def require_site(*, write: bool = False) -> Callable[[Request], Awaitable[SiteAccess]]:
    async def site_access(request: Request) -> SiteAccess:
        return await _resolve(request, write)

    return site_access


def now() -> datetime:
    return datetime.now(UTC)
