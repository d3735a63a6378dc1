"""The read side of the FHIR endpoint: CapabilityStatement, Patient, Observation (readings
and CGM summaries), Device and DiagnosticReport (the summary as a PDF). Searches answer
`searchset` Bundles with paging links; readings come from `counted_readings` only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.fhir import search
from api.fhir.capability import capability_statement
from api.fhir.consent import Need, admit
from api.fhir.errors import OutcomeError, invalid, respond
from api.fhir.report_pdf import summary_pdf
from api.fhir.summary import REPORT_PREFIX, SUMMARY_PREFIX, SummaryKey, cgm_summary_values
from api.fhir.token import CurrentClient, fhir_base
from api.patient_scope import patient_in_scope
from api.state import pool_of
from api.trends import DEFAULT_PERIOD, MAX_PERIOD
from core import fhir_cgm
from core.fhir_cgm import FhirReading, Loinc
from core.units import Unit
from core.vocabulary import RangeFlag, SourceKind

router = APIRouter()

READINGS: Final = Need("Observation", "s", "readings")
READ_READING: Final = Need("Observation", "r", "readings")
SUMMARY: Final = Need("Observation", "s", "trends")
READ_SUMMARY: Final = Need("Observation", "r", "trends")
DEVICES: Final = Need("Device", "s", "readings")
REPORTS: Final = Need("DiagnosticReport", "s", "trends")
PATIENT: Final = Need("Patient", "r", None)
LABORATORY: Final = "laboratory"

_READINGS = """
SELECT identity, measured_at, value, unit, source, device, range_flag,
       context -> 'fhir_identifier'
FROM counted_readings
WHERE patient_id = %(patient)s
  AND measured_at >= coalesce(%(start)s::timestamptz, '-infinity')
  AND measured_at < coalesce(%(end)s::timestamptz, 'infinity')
  AND (%(kinds)s::text[] IS NULL OR source || ' ' || unit = ANY (%(kinds)s))
  AND (%(after_at)s::timestamptz IS NULL OR (measured_at, identity) > (%(after_at)s, %(after_id)s))
ORDER BY measured_at, identity
LIMIT %(limit)s
"""
# A reading by id: its identity's first delivery gives the instant (or the patient's
# corrected one, migration 0013), so the hypertable is searched in one chunk, not all.
_READING = """
SELECT r.identity, r.measured_at, r.value, r.unit, r.source, r.device, r.range_flag,
       r.context -> 'fhir_identifier', r.patient_id
FROM reading_identities i
LEFT JOIN reading_marks m ON m.identity = i.identity
JOIN counted_readings r
  ON r.identity = i.identity AND r.measured_at = coalesce(m.corrected_at, i.measured_at)
WHERE i.identity = %s
"""
_DEVICES = """
SELECT serial, manufacturer, model, source FROM meters
WHERE patient_id = %s AND claimed_at IS NOT NULL
ORDER BY serial
"""


def fhir_json(body: dict[str, Any]) -> JSONResponse:
    return respond(200, body)


@router.get("/metadata", summary="The CapabilityStatement (no token needed)")
async def metadata(request: Request) -> JSONResponse:
    return fhir_json(capability_statement(fhir_base(request), datetime.now(UTC)))


def _patient_ref(patient_id: uuid.UUID) -> str:
    return f"Patient/{patient_id}"


def _entry(base: str, resource: dict[str, Any], mode: str = "match") -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _searchset(
    request: Request, entries: list[dict[str, Any]], next_url: str | None, total: int | None
) -> dict[str, Any]:
    links = [{"relation": "self", "url": str(request.url)}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": fhir_cgm.instant(datetime.now(UTC)),
        "link": links,
        "entry": entries,
    }
    if total is not None:
        bundle["total"] = total
    return bundle


@router.get("/Patient/{patient_id}", summary="A patient who granted the client's clinic access")
async def read_patient(
    request: Request, patient_id: uuid.UUID, caller: CurrentClient
) -> JSONResponse:
    await admit(request, caller, patient_id, PATIENT, "fhir_read_patient")
    async with pool_of(request).connection() as conn:
        cur = await conn.execute("SELECT display_name FROM patients WHERE id = %s", (patient_id,))
        row = await cur.fetchone()
    if row is None:  # a grant names an existing patient; kept for a patient erased meanwhile
        raise OutcomeError(404, "no such patient")
    return fhir_json(fhir_cgm.patient(patient_id, str(row[0])))


def _reading(patient_id: uuid.UUID, row: tuple[Any, ...]) -> FhirReading:
    identity, measured_at, value, unit, source, device, flag, identifiers = row[:8]
    return FhirReading(
        identity=identity,
        measured_at=measured_at,
        value=float(value),
        unit=Unit(unit),
        source=SourceKind(source),
        device_id=fhir_cgm.device_id(patient_id, str(device)),
        range_flag=RangeFlag(flag) if flag else None,
        identifiers=tuple(
            (str(i["system"]), str(i["value"]))
            for i in identifiers or []
            if isinstance(i, dict) and i.get("system") and i.get("value")
        ),
    )


def _kinds(codes: list[tuple[str | None, str]]) -> list[str] | None:
    """Which (source, unit) pairs the `code` tokens ask for; None: every reading."""
    if not codes:
        return None
    kinds = []
    for (source, unit), (code, _profile) in fhir_cgm.READING_CODES.items():
        if any(c == code and s in (None, "", fhir_cgm.LOINC) for s, c in codes):
            kinds.append(f"{source.value} {unit.value}")
    return kinds


def _is_laboratory(values: list[str]) -> bool:
    """`category` tokens: every Observation here is a laboratory one."""
    return all(any(c == LABORATORY for _s, c in search.tokens([v])) for v in values)


@router.get("/Observation", summary="A patient's readings, or the CGM summary of a period")
async def search_observations(request: Request, caller: CurrentClient) -> JSONResponse:
    params = request.query_params
    patient_id = search.patient_reference(params.getlist("patient") + params.getlist("subject"))
    codes = search.tokens(params.getlist("code"))
    summary_asked = any(c == Loinc.SUMMARY and s in (None, "", fhir_cgm.LOINC) for s, c in codes)
    if summary_asked:
        if len(codes) > 1:
            raise invalid("search the CGM summary (107931-8) on its own, not with readings")
        return await _summary_search(request, caller, patient_id)
    window = search.window(params.getlist("date"))
    count = search.count(params.getlist("_count"))
    after_at, after_id = search.decode_cursor(params.getlist(search.CURSOR_PARAM))
    await admit(request, caller, patient_id, READINGS, "fhir_search_observations")
    kinds = _kinds(codes)
    rows: list[tuple[Any, ...]] = []
    if kinds != [] and _is_laboratory(params.getlist("category")):
        async with pool_of(request).connection() as conn:
            cur = await conn.execute(
                _READINGS,
                {
                    "patient": patient_id,
                    "start": window.start,
                    "end": window.end,
                    "kinds": kinds,
                    "after_at": after_at,
                    "after_id": after_id,
                    "limit": count + 1,
                },
            )
            rows = list(await cur.fetchall())
    more = len(rows) > count
    rows = rows[:count]
    base = fhir_base(request)
    ref = _patient_ref(patient_id)
    entries = [
        _entry(base, fhir_cgm.reading_observation(_reading(patient_id, r), ref)) for r in rows
    ]
    next_url = None
    if more:
        kept = [(k, v) for k, v in params.multi_items() if k != search.CURSOR_PARAM]
        cursor = search.encode_cursor(rows[-1][1], rows[-1][0])
        next_url = f"{base}/Observation?{urlencode([*kept, (search.CURSOR_PARAM, cursor)])}"
    return fhir_json(_searchset(request, entries, next_url, None))


def _period(request: Request) -> tuple[datetime, datetime]:
    """The reporting period a summary search names; trends' default and longest period."""
    window = search.window(request.query_params.getlist("date"))
    end = window.end or datetime.now(UTC)
    start = window.start or end - DEFAULT_PERIOD
    # Whole seconds: a summary's id holds its period to the second.
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if end <= start:
        raise invalid("the period is empty: end must be after start")
    if end - start > MAX_PERIOD:
        raise invalid(f"a summary covers at most {MAX_PERIOD.days} days")
    return start, end


async def _summary_resources(request: Request, key: SummaryKey) -> list[dict[str, Any]] | None:
    patient = await patient_in_scope(request, key.patient_id)
    async with pool_of(request).connection() as conn:
        values = await cgm_summary_values(conn, patient, key.start, key.end)
    if values is None:
        return None
    return fhir_cgm.cgm_summary(values, _patient_ref(key.patient_id), key.ids())


async def _summary_search(
    request: Request, caller: CurrentClient, patient_id: uuid.UUID
) -> JSONResponse:
    start, end = _period(request)
    await admit(request, caller, patient_id, SUMMARY, "fhir_search_cgm_summary")
    key = SummaryKey(SUMMARY_PREFIX, patient_id, start, end)
    found = await _summary_resources(request, key) or []
    base = fhir_base(request)
    entries = [_entry(base, r, "match" if i == 0 else "include") for i, r in enumerate(found)]
    return fhir_json(_searchset(request, entries, None, 1 if found else 0))


@router.get("/Observation/{resource_id}", summary="A reading, or a CGM summary or member")
async def read_observation(
    request: Request, resource_id: str, caller: CurrentClient
) -> JSONResponse:
    key = SummaryKey.parse(resource_id)
    if key is not None and key.kind == SUMMARY_PREFIX:
        await admit(request, caller, key.patient_id, READ_SUMMARY, "fhir_read_cgm_summary")
        found = await _summary_resources(request, key) or []
        wanted = key.id
        for resource in found:
            if resource["id"] == wanted:
                return fhir_json(resource)
        raise OutcomeError(404, "no CGM summary for that period (too few CGM readings)")
    try:
        identity = uuid.UUID(resource_id)
    except ValueError as exc:
        raise OutcomeError(404, "no such Observation") from exc
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_READING, (identity,))
        row = await cur.fetchone()
    if row is None:
        raise OutcomeError(404, "no such Observation")
    patient_id = row[8]
    await admit(request, caller, patient_id, READ_READING, "fhir_read_observation")
    reading = _reading(patient_id, tuple(row))
    return fhir_json(fhir_cgm.reading_observation(reading, _patient_ref(patient_id)))


@router.get("/Device", summary="The patient's meters and CGM sensors")
async def search_devices(request: Request, caller: CurrentClient) -> JSONResponse:
    params = request.query_params
    patient_id = search.patient_reference(params.getlist("patient"))
    await admit(request, caller, patient_id, DEVICES, "fhir_search_devices")
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_DEVICES, (patient_id,))
        rows = await cur.fetchall()
    ref = _patient_ref(patient_id)
    base = fhir_base(request)
    entries = [
        _entry(
            base,
            fhir_cgm.device(
                fhir_cgm.FhirDevice(
                    id=fhir_cgm.device_id(patient_id, serial),
                    serial=serial,
                    source=SourceKind(source),
                    manufacturer=manufacturer,
                    model=model,
                ),
                ref,
            ),
        )
        for serial, manufacturer, model, source in rows
    ]
    return fhir_json(_searchset(request, entries, None, len(entries)))


@router.get("/DiagnosticReport", summary="The CGM summary of a period as a PDF report")
async def search_reports(request: Request, caller: CurrentClient) -> JSONResponse:
    params = request.query_params
    patient_id = search.patient_reference(params.getlist("patient"))
    codes = search.tokens(params.getlist("code"))
    start, end = _period(request)
    await admit(request, caller, patient_id, REPORTS, "fhir_search_cgm_reports")
    entries: list[dict[str, Any]] = []
    if not codes or any(c == Loinc.SUMMARY for _s, c in codes):
        patient = await patient_in_scope(request, patient_id)
        async with pool_of(request).connection() as conn:
            values = await cgm_summary_values(conn, patient, start, end)
        if values is not None:
            now = datetime.now(UTC).replace(microsecond=0)
            key = SummaryKey(REPORT_PREFIX, patient_id, start, end)
            report = fhir_cgm.summary_pdf_report(
                key.id,
                values,
                _patient_ref(patient_id),
                key.of(None).id,
                summary_pdf(values, patient_id, now),
                now,
            )
            entries.append(_entry(fhir_base(request), report))
    return fhir_json(_searchset(request, entries, None, len(entries)))
