"""The worklist route: every patient the caller may see, ranked by risk, in one query.

One SQL statement selects the patients the access gate would let in for the `trends` scope
(the caller's own record, or a grant in force that reaches them and covers `trends`; see
`api.access`), and their readings of the current and previous period as one aggregate row per
patient, period and source, plus when their devices last delivered. Each patient whose data
was read gets an audit row, as the gate would write. The ranking is the pure
`dashboards.worklist`; the numbers come from `core.metrics.summarize`, the typed report.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request

from api.access import Policy, record_allowed
from api.auth import CurrentUser
from api.problems import AUTH_RESPONSES
from api.series import series_of
from api.state import pool_of
from core.metrics import Period, Source, Summary, summarize
from core.units import Unit
from core.vocabulary import SourceKind
from dashboards import tables
from dashboards.i18n import DEFAULT_LANG, Labels, Lang
from dashboards.worklist import PatientPeriods, Reason, WorklistEntry, worklist

router = APIRouter(prefix="/api/v1", tags=["dashboards"])

# The consensus report's period; the previous one of equal length is compared with it.
PERIOD = timedelta(days=14)
# Patients ranked at most in one request: a large clinic's panel (ranking needs them all).
MAX_WORKLIST = 2000
# One screen of rows; a clinician pages through hundreds.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# Who may come in through a grant for the `trends` scope (the gate's own rule).
TRENDS = Policy("trends", owner_only=False)

_WORKLIST = """
WITH reached AS (
    SELECT p.id, p.display_name, p.timezone, NULL::uuid AS grant_id
    FROM patients p
    WHERE p.user_id = %(user)s AND %(clinic)s::uuid IS NULL
    UNION ALL
    (SELECT DISTINCT ON (p.id) p.id, p.display_name, p.timezone, g.grant_id
     FROM grants_in_force g
     JOIN grants gr ON gr.id = g.grant_id
     JOIN patients p ON p.id = g.patient_id
     WHERE %(via_grants)s AND g.user_id = %(user)s AND 'trends' = ANY (g.scopes)
       AND p.user_id IS DISTINCT FROM %(user)s
       AND (%(clinic)s::uuid IS NULL OR gr.grantee_organisation_id = %(clinic)s::uuid)
     ORDER BY p.id, g.created_at)
), capped AS (
    SELECT * FROM reached ORDER BY display_name, id LIMIT %(limit)s
), series AS (
    SELECT r.patient_id,
           r.measured_at >= %(split)s AS current,
           r.source,
           count(*) AS n,
           string_agg(timestamptz_send(r.measured_at), ''::bytea
                      ORDER BY r.measured_at) AS epochs,
           string_agg(float8send(r.value), ''::bytea ORDER BY r.measured_at) AS vals,
           string_agg(CASE WHEN r.unit = 'mmol/L' THEN '\\x01'::bytea ELSE '\\x00'::bytea END,
                      ''::bytea ORDER BY r.measured_at) AS units,
           max(r.received_at) AS received
    FROM counted_readings r
    WHERE r.patient_id IN (SELECT id FROM capped)
      AND r.measured_at >= %(start)s AND r.measured_at < %(end)s
    GROUP BY 1, 2, 3
), synced AS (
    SELECT s.patient_id, max(s.last_received_at) AS last
    FROM meter_syncs s WHERE s.patient_id IN (SELECT id FROM capped)
    GROUP BY 1
)
SELECT c.id, c.display_name, c.timezone, c.grant_id, sy.last,
       s.current, s.source, s.n, s.epochs, s.vals, s.units, s.received,
       (SELECT count(*) FROM reached) AS reached
FROM capped c
LEFT JOIN series s ON s.patient_id = c.id
LEFT JOIN synced sy ON sy.patient_id = c.id
"""
# The clinics the caller practises in: the filter's choices.
_CLINICS = """
SELECT o.id, o.name FROM organisation_members m JOIN organisations o ON o.id = m.organisation_id
WHERE m.user_id = %(user)s ORDER BY o.name
"""


@dataclass
class _Gathered:
    name: str
    zone: ZoneInfo
    grant_id: uuid.UUID | None
    last_sync: datetime | None
    rows: dict[tuple[bool, SourceKind], tuple[Any, ...]] = field(default_factory=dict)

    def summary(self, current: bool, period: Period) -> Summary | None:
        """The period's report of one source: CGM where there is sensor data, else meter
        (the rule of `api.series.fetch_series`)."""
        for source in (Source.CGM, Source.METER):
            row = self.rows.get((current, SourceKind(source.value)))
            if row is not None:
                series = series_of(source, *row)
                return summarize(series, self.zone, period=period)
        return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _reason(r: Reason, labels: Labels) -> str:
    if r.goal is not None and r.value_pct is not None:
        return f"{labels[r.key]} {r.value_pct:.1f} % ({labels['goal']} {r.goal})"
    if r.key == "level2" and r.value_pct is not None:
        return f"{labels['level2']}: {r.value_pct:.0f}"
    if r.key == "gmi_rising" and r.value_pct is not None:
        return f"{labels['gmi_rising']} {r.value_pct:+.1f}"
    return labels[r.key]


def _item(e: WorklistEntry, labels: Labels) -> dict[str, Any]:
    local = None if e.last_sync is None else e.last_sync.astimezone(e.zone)
    return {
        "patient_id": str(e.patient_id),
        "name": e.name,
        "source": None if e.source is None else e.source.value,
        "source_label": labels["no_data"] if e.source is None else labels[f"source_{e.source}"],
        "readings": e.readings,
        "tir": tables.pct(e.tir_pct),
        "tar_high": tables.pct(e.tar_high_pct),
        "tar_very_high": tables.pct(e.tar_very_high_pct),
        "tbr": tables.pct(e.tbr_pct),
        "gmi": tables.pct(e.gmi_pct),
        "cv": tables.pct(e.cv_pct),
        "days_since_sync": tables.DASH if e.days_since_sync is None else str(e.days_since_sync),
        "last_sync": tables.when(local),
        "missed": sorted(m.value for m in e.missed),
        "flagged": e.flagged,
        "tier": e.tier,
        "reasons": [_reason(r, labels) for r in e.reasons] or [labels["nothing"]],
        "reason_keys": [r.key for r in e.reasons],
    }


@router.get(
    "/dashboards/worklist",
    summary="The caller's patients ranked by risk, with the reasons (each one audited)",
    responses=AUTH_RESPONSES,
)
async def clinician_worklist(
    request: Request,
    caller: CurrentUser,
    lang: Annotated[Lang, Query(description="language of labels")] = DEFAULT_LANG,
    unit: Annotated[Unit, Query(description="unit of glucose values")] = Unit.MG_DL,
    flagged: Annotated[bool, Query(description="only patients with a reason")] = False,
    clinic: Annotated[uuid.UUID | None, Query(description="only patients of this clinic")] = None,
    page: Annotated[int, Query(ge=1, description="1 for the first page")] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="rows a page")] = PAGE_SIZE,
) -> dict[str, Any]:
    labels = Labels(lang)
    now = datetime.now(UTC)
    params = {
        "user": caller.id,
        "clinic": clinic,
        "via_grants": TRENDS.admits(caller.role),
        "limit": MAX_WORKLIST,
        "start": now - 2 * PERIOD,
        "split": now - PERIOD,
        "end": now,
    }
    gathered: dict[uuid.UUID, _Gathered] = {}
    reached = 0
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_WORKLIST, params)
        for row in await cur.fetchall():
            reached = int(row[12])
            patient_id, name, tz, grant_id, synced, current, source = row[:7]
            g = gathered.setdefault(
                patient_id, _Gathered(str(name), _zone(str(tz)), grant_id, synced)
            )
            if source is None:
                continue
            received = row[11]
            if g.last_sync is None or received > g.last_sync:
                g.last_sync = received
            g.rows[(bool(current), SourceKind(source))] = row[8:11]
        for patient_id, g in gathered.items():
            await record_allowed(conn, request, patient_id, caller, g.grant_id)
        cur = await conn.execute(_CLINICS, {"user": caller.id})
        clinics = [{"id": str(i), "name": str(n)} for i, n in await cur.fetchall()]
    this, before = Period(now - PERIOD, now), Period(now - 2 * PERIOD, now - PERIOD)
    periods = [
        PatientPeriods(
            pid, g.name, g.zone, g.summary(True, this), g.summary(False, before), g.last_sync
        )
        for pid, g in gathered.items()
    ]
    ranked = [e for e in worklist(periods, now) if e.flagged or not flagged]
    first = (page - 1) * size
    return {
        "lang": lang.value,
        "unit": unit.value,
        "total": len(ranked),
        "page": page,
        "pages": max(1, -(-len(ranked) // size)),
        "clinics": clinics,
        # Patients beyond MAX_WORKLIST (by name) are not ranked: said, never silently left out.
        "not_ranked": max(0, reached - len(gathered)),
        "items": [_item(e, labels) for e in ranked[first : first + size]],
    }
