"""The Nightscout API v1 subset real clients use, served twice: under `/ns/{site}/` for clients
that keep the path of the URL they were given (xDrip+'s uploader, Juggluco, xDrip4iOS's
uploader, py-nightscout), and from the root for those that do not (xDrip+'s follower,
xDrip4iOS's follower, the LibreLinkUp uploader), where the credential names the site.

Behaviour follows cgm-remote-monitor lib/api/ (status.js, entries/, treatments/,
devicestatus/, profile/, experiments/, and lib/authorization/endpoints.js for the v2
exchange), with one deliberate difference: an entries list that names no type holds sensor
glucose (`sgv`) only. Nightscout would mix in meter and calibration entries, and xDrip+'s
follower turns every entry it gets into a sensor reading (EntryProcessor.java reads `sgv`,
which a meter entry lacks, as 0 mg/dL): with a bridge's fingersticks on the same record,
that would put false lows on a follower's phone. Meter entries are at `/entries/mbg.json` and
`find[type]=mbg`, calibrations at `/entries/cal.json`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from psycopg.rows import tuple_row

from api.nightscout import entries, gate, query, sites, store, treatments
from api.nightscout.dates import http_date, millis, parse_iso
from api.nightscout.errors import RESPONSES, NightscoutError, bad_request, too_large, unauthorized
from api.nightscout.gate import SiteAccess
from api.state import pool_of, settings_of
from core.metrics.bands import THRESHOLDS
from core.units import Unit, to_mg_dl

# The Nightscout release whose v1 API this mirrors. Clients gate features on it: xDrip+
# refuses treatment downloads from 0.6-0.8 (NightscoutUploader.isNightscoutCompatible).
NIGHTSCOUT_VERSION = "15.0.3"
SERVER_NAME = "glucobridge"
# Entries and device status default to 10 per request, treatments to 100 (1000 when the
# request filters), as lib/api/*/index.js and lib/constants.json.
ENTRIES_DEFAULT_COUNT = 10
TREATMENTS_DEFAULT_COUNT = 100
TREATMENTS_FIND_COUNT = 1000
# Nightscout accepts 50 MB bodies; a week of 1-minute CGM is ~2 MB of JSON. Beyond these an
# upload is split by the app anyway.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_UPLOAD_DOCUMENTS = 20_000

site_router = APIRouter(prefix="/ns/{site}", tags=["nightscout"])
root_router = APIRouter(tags=["nightscout"])

Reader = Annotated[SiteAccess, Depends(gate.require_site())]
Writer = Annotated[SiteAccess, Depends(gate.require_site(write=True))]


def _site_param(
    site: Annotated[
        str,
        Path(max_length=64, description="the site's identifier (rotatable, unguessable)"),
    ],
) -> None:
    """Declares the path parameter for the OpenAPI document; the gate reads it."""


site_router.dependencies.append(Depends(_site_param))


# The OpenAPI document lists each operation once, under /ns/{site}/; the root copies are
# the same operations (the credential names the site) and are said so there.
ROOT_TOO = "Also answered at the same path from the root, where the credential names the site."


def _route(method: str, *paths: str, summary: str) -> Callable[[Callable[..., Any]], Any]:
    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for router, documented in ((site_router, True), (root_router, False)):
            for path in paths:
                router.add_api_route(
                    path,
                    endpoint,
                    methods=[method],
                    summary=summary,
                    description=ROOT_TOO,
                    responses=RESPONSES,
                    response_model=None,
                    include_in_schema=documented,
                )
        return endpoint

    return register


def _query(request: Request, default: int, with_find: int) -> query.Query:
    try:
        return query.parse(request.query_params.multi_items(), default, with_find)
    except query.QueryError as exc:
        raise bad_request(str(exc)) from exc


def _not_modified(request: Request, newest: datetime | None) -> Response | None:
    """304 when nothing is newer than If-Modified-Since (compared at one second, as HTTP
    dates are written); the Last-Modified header either way."""
    if newest is None:
        return None
    sent = request.headers.get("if-modified-since")
    if sent:
        try:
            since = parsedate_to_datetime(sent)
        except (TypeError, ValueError):
            since = None
        if (
            since is not None
            and since.tzinfo is not None
            and int(newest.timestamp()) <= int(since.timestamp())
        ):
            return Response(status_code=304, headers={"Last-Modified": http_date(newest)})
    return None


def _listing(request: Request, docs: list[dict[str, Any]], newest: datetime | None) -> Response:
    unchanged = _not_modified(request, newest)
    if unchanged is not None:
        return unchanged
    headers = {"Last-Modified": http_date(newest)} if newest is not None else {}
    return JSONResponse(docs, headers=headers)


def _newest(docs: Sequence[dict[str, Any]], key: str) -> datetime | None:
    if not docs:
        return None
    value = docs[0][key]
    return parse_iso(value).at if isinstance(value, str) else None


# -- status ----------------------------------------------------------------------------------


async def _thresholds(request: Request, access: SiteAccess) -> dict[str, float]:
    """The clinician's thresholds where set, else the consensus levels, in mg/dL as Nightscout
    writes them (bgLow: urgent low, bgTargetBottom / bgTargetTop: the range, bgHigh)."""
    consensus = THRESHOLDS[Unit.MG_DL]
    found = {
        "bgHigh": consensus.very_high_above,
        "bgTargetTop": consensus.high_above,
        "bgTargetBottom": consensus.low_below,
        "bgLow": consensus.very_low_below,
    }
    async with pool_of(request).connection() as conn:
        cur = conn.cursor(row_factory=tuple_row)
        await cur.execute(
            "SELECT unit, very_low, low, high FROM alert_thresholds WHERE patient_id = %s",
            (access.patient_id,),
        )
        row = await cur.fetchone()
    if row is not None:
        unit = Unit(row[0])
        found["bgLow"] = round(to_mg_dl(row[1], unit))
        found["bgTargetBottom"] = round(to_mg_dl(row[2], unit))
        found["bgTargetTop"] = round(to_mg_dl(row[3], unit))
    return found


@_route("GET", "/api/v1/status.json", "/api/v1/status", summary="Nightscout: server status")
async def ns_status(request: Request, access: Reader) -> dict[str, Any]:
    now = gate.now()
    return {
        "status": "ok",
        "name": SERVER_NAME,
        "version": NIGHTSCOUT_VERSION,
        "serverTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "serverTimeEpoch": millis(now),
        "apiEnabled": True,
        "careportalEnabled": True,
        "boluscalcEnabled": False,
        "settings": {
            "units": "mmol" if access.site.unit is Unit.MMOL_L else "mg/dl",
            "timeFormat": 24,
            "customTitle": SERVER_NAME,
            "theme": "default",
            "language": "en",
            "alarmUrgentHigh": True,
            "alarmHigh": True,
            "alarmLow": True,
            "alarmUrgentLow": True,
            "authDefaultRoles": "denied",
            "enable": ["careportal", "rawbg", "iob", "cob", "devicestatus"],
            "thresholds": await _thresholds(request, access),
        },
        "extendedSettings": {"devicestatus": {"advanced": True}},
        "authorized": None,
        "runtimeState": "loaded",
    }


@_route("GET", "/api/v1/experiments/test", summary="Nightscout: is this the uploader secret?")
async def ns_experiments_test(access: Writer) -> dict[str, str]:
    # Nightscout lets only the API secret through here (permission authorization:debug:test);
    # apps use it to check the secret they were given. A follower token is refused.
    return {"status": "ok"}


# -- entries ---------------------------------------------------------------------------------

EntrySpec = Literal[
    "sgv",
    "sgv.json",
    "sgv.csv",
    "mbg",
    "mbg.json",
    "mbg.csv",
    "cal",
    "cal.json",
    "cal.csv",
    "current",
    "current.json",
    "current.csv",
]


async def _entries(
    request: Request, access: SiteAccess, kinds: Sequence[str], as_csv: bool, count: int | None
) -> Response:
    asked = _query(request, ENTRIES_DEFAULT_COUNT, ENTRIES_DEFAULT_COUNT)
    if asked.type is not None:
        if asked.type not in (entries.SGV, entries.MBG, entries.CAL):
            raise bad_request(f"type {asked.type!r} is not served (sgv, mbg, cal are)")
        kinds = [asked.type]
    if count is not None:
        asked = query.Query(count, asked.after, asked.before, asked.type)
    async with pool_of(request).connection() as conn:
        docs = await store.entry_documents(conn, access.patient_id, asked, kinds, gate.now())
    newest = _newest(docs, "dateString")
    if as_csv:
        unchanged = _not_modified(request, newest)
        if unchanged is not None:
            return unchanged
        return Response(entries.csv_lines(docs), media_type="text/csv")
    return _listing(request, docs, newest)


@_route(
    "GET",
    "/api/v1/entries",
    "/api/v1/entries.json",
    "/api/v1/entries.csv",
    summary="Nightscout: sensor glucose entries, newest first",
)
async def ns_entries(request: Request, access: Reader) -> Response:
    return await _entries(request, access, [entries.SGV], request.url.path.endswith(".csv"), None)


@_route(
    "GET",
    "/api/v1/entries/{spec}",
    summary="Nightscout: entries of one type (sgv, mbg, cal), or the current one",
)
async def ns_entries_of_type(
    request: Request,
    access: Reader,
    spec: Annotated[EntrySpec, Path(description="type, with .json or .csv")],
) -> Response:
    name, _, extension = spec.partition(".")
    if name == "current":
        return await _entries(request, access, [entries.SGV], extension == "csv", 1)
    return await _entries(request, access, [name], extension == "csv", None)


async def _json_body(request: Request) -> list[object]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # never more than the limit in memory
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise too_large(f"at most {MAX_UPLOAD_BYTES // 2**20} MiB per request")
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        parsed = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not JSON: {exc}") from exc
    documents = parsed if isinstance(parsed, list) else [parsed]
    if parsed is None or len(documents) > MAX_UPLOAD_DOCUMENTS:
        raise bad_request(
            f"send one JSON object or an array of at most {MAX_UPLOAD_DOCUMENTS} objects"
        )
    return documents


def _upload_pool(request: Request) -> Any:
    return request.app.state.nightscout_upload_pool


@_route("POST", "/api/v1/entries", summary="Nightscout: upload entries (sgv, mbg, cal)")
async def ns_upload_entries(request: Request, access: Writer) -> JSONResponse:
    documents = await _json_body(request)
    upload = store.split([entries.parse(i, doc) for i, doc in enumerate(documents)])
    stored = await asyncio.to_thread(
        store.write_entries, _upload_pool(request), access.site, upload
    )
    return JSONResponse(stored)


# -- treatments, device status, profile ------------------------------------------------------


@_route(
    "GET",
    "/api/v1/treatments",
    "/api/v1/treatments.json",
    summary="Nightscout: treatments (carbs, insulin, notes, BG checks), newest first",
)
async def ns_treatments(request: Request, access: Reader) -> Response:
    asked = _query(request, TREATMENTS_DEFAULT_COUNT, TREATMENTS_FIND_COUNT)
    async with pool_of(request).connection() as conn:
        docs = await store.treatment_documents(conn, access.patient_id, asked, gate.now())
    return _listing(request, docs, _newest(docs, "created_at"))


async def _upload_treatments(request: Request, access: SiteAccess) -> JSONResponse:
    documents = await _json_body(request)
    now = gate.now()
    kept: list[treatments.Treatment] = []
    refused: list[entries.Refused] = []
    for index, doc in enumerate(documents):
        try:
            kept.append(treatments.treatment(doc, now))
        except treatments.DocumentError as exc:
            refused.append(entries.Refused(index, doc, f"treatment {index}: {exc}"))
    stored = await asyncio.to_thread(
        store.write_treatments, _upload_pool(request), access.site, kept, refused
    )
    return JSONResponse(stored)


@_route("POST", "/api/v1/treatments", summary="Nightscout: upload treatments")
async def ns_upload_treatments(request: Request, access: Writer) -> JSONResponse:
    return await _upload_treatments(request, access)


@_route("PUT", "/api/v1/treatments", summary="Nightscout: upload or replace treatments")
async def ns_replace_treatments(request: Request, access: Writer) -> JSONResponse:
    return await _upload_treatments(request, access)


@_route(
    "GET",
    "/api/v1/devicestatus",
    "/api/v1/devicestatus.json",
    summary="Nightscout: device status (uploader battery, pump), newest first",
)
async def ns_devicestatus(request: Request, access: Reader) -> Response:
    asked = _query(request, ENTRIES_DEFAULT_COUNT, ENTRIES_DEFAULT_COUNT)
    async with pool_of(request).connection() as conn:
        docs = await store.devicestatus_documents(conn, access.patient_id, asked, gate.now())
    return JSONResponse(docs)


@_route("POST", "/api/v1/devicestatus", summary="Nightscout: upload device status")
async def ns_upload_devicestatus(request: Request, access: Writer) -> JSONResponse:
    documents = await _json_body(request)
    now = gate.now()
    try:
        statuses = [treatments.device_status(doc, now) for doc in documents]
    except treatments.DocumentError as exc:
        raise bad_request(f"device status: {exc}") from exc
    async with pool_of(request).connection() as conn:
        stored = await store.store_devicestatus(conn, access.patient_id, statuses)
    return JSONResponse(stored)


@_route(
    "GET",
    "/api/v1/profile",
    "/api/v1/profile.json",
    summary="Nightscout: treatment profiles (none: glucobridge keeps no therapy settings)",
)
async def ns_profile(access: Reader) -> list[dict[str, Any]]:
    # Basal rates, carb ratios and sensitivities are dosing settings; glucobridge neither
    # holds nor invents them, so the list is empty, as on a Nightscout without a profile.
    return []


# -- the v2 exchange -------------------------------------------------------------------------


@_route(
    "GET",
    "/api/v2/authorization/request/{token}",
    summary="Nightscout: exchange a follower token for a JWT (Bearer)",
)
async def ns_authorization_request(
    request: Request,
    access: Annotated[SiteAccess, Depends(gate.require_site())],
    token: Annotated[str, Path(max_length=512, description="a follower token")],
) -> dict[str, Any]:
    if access.token_id is None:
        raise unauthorized()  # the uploader secret is not a subject (lib/authorization)
    async with pool_of(request).connection() as conn:
        found = await sites.token_by_id(conn, access.token_id)
    if found is None or not found.in_force:
        raise unauthorized()
    signed, iat, exp = gate.issue_jwt(settings_of(request).jwt_secret, found, gate.now())
    return {
        "token": signed,
        "sub": found.label,
        "permissionGroups": [["api:*:read"]],
        "iat": iat,
        "exp": exp,
    }


__all__ = ["NightscoutError", "root_router", "site_router"]
