"""Dashboards: the data behind each page (JSON, through the one access gate) and the pages.

How pages authenticate. The HTML pages under /dashboards/ are static shells: they hold no
patient data and are the same for everyone. The sign-in page posts to the OAuth2 password
flow (`/api/v1/auth/token`) and keeps the access token in `sessionStorage` (gone when the
tab closes; never in a cookie, so no CSRF surface). Each page then fetches its data with
`Authorization: Bearer ...` from the routes below, which are ordinary API routes under
/api/v1/patients/{patient_id}/dashboards/...: each carries `require_patient("trends")`, so
the grant check and the audit row are the very ones every other patient route has, and the
authorization-matrix test covers them as it enumerates `app.routes`. A user without a grant
gets a 404 problem and the page shows no figure and no value of that patient.

The worklist spans patients (`api.worklist`): one query selects the patients this gate
would let in and their readings, and each of them is audited.

plotly.js is served from the plotly package's own bundled `plotly.min.js`: no CDN, the
pages work offline; `api.assets` serves it compressed under a hashed name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.staticfiles import StaticFiles
from plotly.utils import PlotlyJSONEncoder
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse

from api import assets
from api.access import TrendsAccess
from api.patient_scope import ScopedPatient, patient_in_scope
from api.problems import PATIENT_RESPONSES
from api.series import fetch_series
from api.state import pool_of
from api.worklist import router as worklist_router
from core.days import daily_summaries
from core.metrics import (
    Period,
)
from core.metrics import summarize as summarize_series
from core.metrics.report import MeterReport
from core.units import Unit
from core.vocabulary import SourceKind
from dashboards import figures, report, tables
from dashboards.i18n import DEFAULT_LANG, Labels, Lang, catalogue_js
from dashboards.meals import (
    LoggedReading,
    MealEvent,
    rises_by_type,
    typed_pairs,
    unpaired_after_meal,
    with_meal_events,
)

router = APIRouter(prefix="/api/v1", tags=["dashboards"])

# The consensus report's period, and the one every page shows.
PERIOD = timedelta(days=14)
# The logbook shows the latest readings of the period: a fortnight of 7 a day.
LOGBOOK_ROWS = 100

LangParam = Annotated[Lang, Query(description="language of labels: en or zh-CN")]
UnitParam = Annotated[Unit, Query(description="unit of glucose values")]

_LOGBOOK = """
SELECT measured_at, mg_dl, meal, carbohydrate_g, value, unit FROM counted_readings
WHERE patient_id = %(patient)s AND measured_at >= %(start)s AND measured_at < %(end)s
ORDER BY measured_at
"""
# Meals apps logged (Nightscout treatments with carbs), paired with the readings around them.
_MEAL_EVENTS = """
SELECT at, carbohydrate_g FROM meal_events
WHERE patient_id = %(patient)s AND at >= %(start)s AND at < %(end)s AND carbohydrate_g > 0
ORDER BY at
"""


def _json(payload: dict[str, Any]) -> Response:
    """Figures serialise through plotly's own encoder (numpy arrays, datetimes)."""
    return Response(json.dumps(payload, cls=PlotlyJSONEncoder), media_type="application/json")


async def _logged(
    request: Request, patient: ScopedPatient, start: datetime, end: datetime
) -> list[LoggedReading]:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_LOGBOOK, {"patient": patient.id, "start": start, "end": end})
        rows = await cur.fetchall()
    return [
        LoggedReading(
            at, at.astimezone(patient.zones), float(mg), meal, carbs, float(value), Unit(unit)
        )
        for at, mg, meal, carbs, value, unit in rows
    ]


def _head(
    patient: ScopedPatient, name: str, start: datetime, end: datetime, unit: Unit, lang: Lang
) -> dict[str, Any]:
    # The 14 days end now, so they start and end at this time of day (as dates alone they
    # would name 15 days).
    local_start, local_end = start.astimezone(patient.zones), end.astimezone(patient.zones)
    return {
        "patient_id": str(patient.id),
        "name": name,
        "timezone": patient.timezone,
        "period": f"{local_start:%Y-%m-%d %H:%M} – {local_end:%Y-%m-%d %H:%M}",
        "unit": unit.value,
        "lang": lang.value,
    }


async def _name(request: Request, patient_id: uuid.UUID) -> str:
    async with pool_of(request).connection() as conn:
        cur = await conn.execute("SELECT display_name FROM patients WHERE id = %s", (patient_id,))
        row = await cur.fetchone()
    return "" if row is None else str(row[0])


def _today_points(logged: Sequence[LoggedReading], today: date) -> tuple[bool, list[Any]]:
    """Today's readings, or those of the latest day with readings (a meter synced daily)."""
    if not logged:
        return True, []
    day = today if any(r.local.date() == today for r in logged) else logged[-1].local.date()
    points = [
        figures.Point(r.local, r.mg_dl, r.meal, r.band) for r in logged if r.local.date() == day
    ]
    return day == today, points


@router.get(
    "/patients/{patient_id}/dashboards/patient",
    summary="The patient page: today's readings, AGP, time in ranges, days, logbook",
    responses=PATIENT_RESPONSES,
)
async def patient_dashboard(
    request: Request,
    access: TrendsAccess,
    lang: LangParam = DEFAULT_LANG,
    unit: UnitParam = Unit.MG_DL,
) -> Response:
    patient = await patient_in_scope(request, access.patient_id)
    labels = Labels(lang)
    end = datetime.now(UTC)
    start = end - PERIOD
    logged = await _logged(request, patient, start, end)
    is_today, points = _today_points(logged, end.astimezone(patient.zones).date())
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(conn, patient.id, start, end, with_meals=True)
    local_today = end.astimezone(patient.zones).date()
    days = (
        daily_summaries(
            fetched.series,
            patient.zones,
            local_today - timedelta(days=PERIOD.days - 1),
            local_today,
        )
        if fetched.series is not None
        else []
    )
    current = (
        None
        if fetched.series is None
        else summarize_series(fetched.series, patient.zones, period=Period(start, end), unit=unit)
    )
    left_out = None if current is None else report.agp_left_out(current, labels)
    today_title = labels["today"] if is_today else labels["latest_day"]
    return _json(
        {
            **_head(patient, await _name(request, patient.id), start, end, unit, lang),
            "readings": len(logged),
            "figures": {
                "today": figures.readings_figure(points, unit, labels, today_title),
                "agp": None
                if current is None or not current.agp or left_out
                else report.agp_report_figure(current.agp, current.limits, unit, labels),
            },
            "agp_left_out": left_out,
            "bands": None if current is None else report.band_rows(current, labels),
            "bands_title": None
            if current is None
            else labels["time_in_ranges"]
            if current.source is SourceKind.CGM
            else f"{labels['time_in_ranges']} ({labels['of_readings']})",
            "days": tables.day_rows(days, unit),
            "logbook": tables.logbook_rows(logged, unit, labels)[:LOGBOOK_ROWS],
        }
    )


@router.get(
    "/patients/{patient_id}/dashboards/nutrition",
    summary="The nutritionist page: readings paired around meals, rise per meal type, days",
    responses=PATIENT_RESPONSES,
)
async def nutrition_dashboard(
    request: Request,
    access: TrendsAccess,
    lang: LangParam = DEFAULT_LANG,
    unit: UnitParam = Unit.MG_DL,
) -> Response:
    patient = await patient_in_scope(request, access.patient_id)
    labels = Labels(lang)
    end = datetime.now(UTC)
    start = end - PERIOD
    logged = await _logged(request, patient, start, end)
    async with pool_of(request).connection() as conn:
        cur = await conn.execute(_MEAL_EVENTS, {"patient": patient.id, "start": start, "end": end})
        logged = with_meal_events(logged, [MealEvent(at, g) for at, g in await cur.fetchall()])
    pairs = typed_pairs(logged)
    by_day: dict[date, tuple[list[float], list[float]]] = {}
    for r in logged:
        before, after = by_day.setdefault(r.local.date(), ([], []))
        if r.meal == "before_meal":
            before.append(r.mg_dl)
        elif r.meal == "after_meal":
            after.append(r.mg_dl)
    days = sorted(by_day)

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    return _json(
        {
            **_head(patient, await _name(request, patient.id), start, end, unit, lang),
            "readings": len(logged),
            "figures": {
                "rise": figures.meal_rise_figure(rises_by_type(pairs), unit, labels),
                "days": figures.days_compared_figure(
                    days,
                    [mean(by_day[d][0]) for d in days],
                    [mean(by_day[d][1]) for d in days],
                    unit,
                    labels,
                ),
            },
            "pairs": tables.pair_rows(pairs, unit, labels),
            "unpaired": tables.unpaired_rows(unpaired_after_meal(logged), unit, labels),
        }
    )


@router.get(
    "/patients/{patient_id}/dashboards/report",
    summary="The pre-visit report (AGP Report layout): statistics, bands, AGP, daily profiles",
    responses=PATIENT_RESPONSES,
)
async def report_dashboard(
    request: Request,
    access: TrendsAccess,
    lang: LangParam = DEFAULT_LANG,
    unit: UnitParam = Unit.MG_DL,
) -> Response:
    patient = await patient_in_scope(request, access.patient_id)
    labels = Labels(lang)
    end = datetime.now(UTC)
    start = end - PERIOD
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(conn, patient.id, start, end, with_meals=True)
        before = await fetch_series(conn, patient.id, start - PERIOD, start)
    period = Period(start, end)
    current = (
        None
        if fetched.series is None
        else summarize_series(fetched.series, patient.zones, period=period, unit=unit)
    )
    previous = (
        None
        if before.series is None
        else summarize_series(
            before.series, patient.zones, period=Period(start - PERIOD, start), unit=unit
        )
    )
    logged = await _logged(request, patient, start, end)
    local_start = start.astimezone(patient.zones)
    local_end = end.astimezone(patient.zones)
    head = _head(patient, await _name(request, patient.id), start, end, unit, lang)
    period_text = str(head["period"])
    payload: dict[str, Any] = {
        **head,
        "period": period_text,
        "identifier": str(patient.id),
        "printed": f"{local_end:%Y-%m-%d}",
        "readings": len(logged),
        "source": None if current is None else current.source.value,
        "figures": {"agp": None, "days": None},
    }
    if current is None:
        return _json(payload)
    left_out = report.agp_left_out(current, labels)
    agp_bins_out = current.agp
    days = report.daily_profiles_figure(
        logged,
        local_start.date() + timedelta(days=1),
        PERIOD.days,
        current.limits,
        unit,
        labels,
    )
    payload |= {
        "stats": report.stats_rows(current, labels, period_text),
        "bands": report.band_rows(current, labels),
        "bands_title": labels["time_in_ranges"]
        if current.source is SourceKind.CGM
        else f"{labels['time_in_ranges']} ({labels['of_readings']})",
        "agp_left_out": left_out,
        "figures": {
            "agp": None
            if not agp_bins_out or left_out
            else report.agp_report_figure(agp_bins_out, current.limits, unit, labels),
            "days": days,
        },
        "meter": report.meter_rows(current, labels) if isinstance(current, MeterReport) else None,
        "change": [
            row
            for row in tables.metric_rows(current, previous, unit, labels)
            if (row["this"], row["previous"]) != (tables.DASH, tables.DASH)
        ],
    }
    return _json(payload)


async def _i18n_js(request: StarletteRequest) -> StarletteResponse:
    return StarletteResponse(catalogue_js(), media_type="text/javascript")


def install(app: FastAPI) -> None:
    """The data routes, and the static shells with plotly.js and the label catalogue. The
    shells and scripts carry no patient data, so they are served without a token."""
    app.include_router(router)
    app.include_router(worklist_router)
    assets.install(app)
    app.add_route("/dashboards/assets/i18n.js", _i18n_js, include_in_schema=False)
    app.mount("/dashboards", StaticFiles(directory=assets.STATIC_DIR, html=True), name="dashboards")
