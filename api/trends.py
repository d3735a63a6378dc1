"""Trends of one patient: headline metrics for a period, the previous period beside it, the
AGP, and daily summaries in the patient's own days. Pure computation lives in core/."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from api.patient_scope import Patient, pool_of
from api.problems import ProblemError, require_zoned
from api.series import fetch_series
from core.days import DaySummary, daily_summaries
from core.metrics import (
    DEFAULT_AGP_BIN_MINUTES,
    BandPercentages,
    GlucoseSeries,
    Source,
    agp_bins,
    summarize,
)
from core.metrics.export import summary_to_json
from core.units import Unit, from_mg_dl

router = APIRouter(prefix="/api/v1")

# The consensus report covers 14 days; it is the default period.
DEFAULT_PERIOD = timedelta(days=14)
# A year is the longest period a clinician reviews at once; longer requests are refused
# rather than loading tens of millions of readings into one response.
MAX_PERIOD = timedelta(days=366)
# Daily summaries per page: a month at a glance by default, a quarter at most.
DEFAULT_DAYS_PAGE = 31
MAX_DAYS_PAGE = 92
# Keys compared between a period and the previous one (mg/dL names; converted with the unit).
_COMPARED = (
    "readings",
    "readings_per_day",
    "mean_mg_dl",
    "sd_mg_dl",
    "cv_pct",
    "gmi_pct",
    "pct_very_low",
    "pct_low",
    "pct_in_range",
    "pct_high",
    "pct_very_high",
    "lbgi",
    "hbgi",
    "hypo_level1",
    "hypo_level2",
)

Start = Annotated[
    datetime | None, Query(description="period start, inclusive (default: end - 14 days)")
]
End = Annotated[datetime | None, Query(description="period end, exclusive (default: now)")]
UnitParam = Annotated[Unit, Query(description="unit of glucose values in the answer")]
SourceParam = Annotated[
    Source | None,
    Query(description="cgm: hypoglycaemia in episodes; meter: in readings (default: inferred)"),
]


class TrendsOut(BaseModel):
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    unit: Unit
    timezone: str
    source: Source | None
    control_excluded: int
    # Same keys as `glucobridge metrics` (mmol/L: `_mg_dl` keys become `_mmol_l`); None when
    # the period holds no readings.
    summary: dict[str, Any] | None


class ComparisonOut(BaseModel):
    current: TrendsOut
    previous: TrendsOut
    # current - previous for the headline keys both periods have (keys in `unit`).
    change: dict[str, float | None]


class AgpBinOut(BaseModel):
    minute_of_day: int
    readings: int
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float


class AgpOut(BaseModel):
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    unit: Unit
    timezone: str
    bin_minutes: int
    readings: int
    # A fixed-size profile (at most 1440 / bin_minutes bins), not a collection: not paged.
    bins: list[AgpBinOut]


class TagStatsOut(BaseModel):
    readings: int
    mean: float | None
    pct_in_target: float | None


class DayOut(BaseModel):
    date: date
    timezone: str
    start: datetime
    end: datetime
    hours: float
    readings: int
    mean: float | None
    min: float | None
    max: float | None
    sd: float | None
    bands: BandPercentages | None
    hypo_level1: int | None
    hypo_level2: int | None
    hypo_counted: str | None
    fasting: TagStatsOut
    before_meal: TagStatsOut
    after_meal: TagStatsOut
    meal_pairs: int
    mean_rise: float | None


class DaysPage(BaseModel):
    patient_id: uuid.UUID
    unit: Unit
    items: list[DayOut]  # newest day first
    next_cursor: str | None


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    require_zoned(start, end)
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_PERIOD
    if end <= start:
        raise ProblemError(422, "invalid-period", "Invalid period", "end must be after start")
    if end - start > MAX_PERIOD:
        raise ProblemError(
            422, "period-too-long", "Period too long", f"at most {MAX_PERIOD.days} days"
        )
    return start, end


async def _trends(
    request: Request,
    patient: Patient,
    start: datetime,
    end: datetime,
    unit: Unit,
    source: Source | None,
) -> TrendsOut:
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(conn, patient.id, start, end, source=source)
    summary = None
    series = fetched.series
    if series is not None:
        summary = summary_to_json(summarize(series, patient.zones), unit)
        summary["control_excluded"] = fetched.control_excluded
    return TrendsOut(
        patient_id=patient.id,
        start=start,
        end=end,
        unit=unit,
        timezone=patient.timezone,
        source=fetched.source,
        control_excluded=fetched.control_excluded,
        summary=summary,
    )


@router.get(
    "/patients/{patient_id}/trends",
    response_model=TrendsOut,
    summary="Consensus metrics of a period: time in ranges, mean, SD, CV, GMI, AGP ...",
)
async def trends(
    request: Request,
    patient: Patient,
    start: Start = None,
    end: End = None,
    unit: UnitParam = Unit.MG_DL,
    source: SourceParam = None,
) -> TrendsOut:
    period_start, period_end = _period(start, end)
    return await _trends(request, patient, period_start, period_end, unit, source)


@router.get(
    "/patients/{patient_id}/trends/comparison",
    response_model=ComparisonOut,
    summary="A period beside the previous period of equal length",
)
async def comparison(
    request: Request,
    patient: Patient,
    start: Start = None,
    end: End = None,
    unit: UnitParam = Unit.MG_DL,
    source: SourceParam = None,
) -> ComparisonOut:
    period_start, period_end = _period(start, end)
    length = period_end - period_start
    current = await _trends(request, patient, period_start, period_end, unit, source)
    previous = await _trends(
        request, patient, period_start - length, period_start, unit, current.source or source
    )
    change: dict[str, float | None] = {}
    if current.summary is not None and previous.summary is not None:
        suffix = "_mg_dl" if unit is Unit.MG_DL else "_mmol_l"
        for key in _COMPARED:
            name = key.replace("_mg_dl", suffix)
            now, before = current.summary.get(name), previous.summary.get(name)
            change[name] = None if now is None or before is None else now - before
    return ComparisonOut(current=current, previous=previous, change=change)


@router.get(
    "/patients/{patient_id}/agp",
    response_model=AgpOut,
    summary="Ambulatory Glucose Profile: percentiles 5/25/50/75/95 by local time of day",
)
async def agp(
    request: Request,
    patient: Patient,
    start: Start = None,
    end: End = None,
    unit: UnitParam = Unit.MG_DL,
    bin_minutes: Annotated[
        int, Query(ge=5, le=60, description="bin width; must divide a day")
    ] = DEFAULT_AGP_BIN_MINUTES,
) -> AgpOut:
    period_start, period_end = _period(start, end)
    if (24 * 60) % bin_minutes:
        raise ProblemError(
            422, "invalid-request", "Invalid request", "bin_minutes must divide a day"
        )
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(conn, patient.id, period_start, period_end)
    bins: list[AgpBinOut] = []
    series = fetched.series
    if series is not None:
        for b in agp_bins(series.times, series.values_mg_dl, patient.zones, bin_minutes):
            bins.append(
                AgpBinOut(
                    minute_of_day=b.minute_of_day,
                    readings=b.readings,
                    p5=from_mg_dl(b.p5, unit),
                    p25=from_mg_dl(b.p25, unit),
                    p50=from_mg_dl(b.p50, unit),
                    p75=from_mg_dl(b.p75, unit),
                    p95=from_mg_dl(b.p95, unit),
                )
            )
    return AgpOut(
        patient_id=patient.id,
        start=period_start,
        end=period_end,
        unit=unit,
        timezone=patient.timezone,
        bin_minutes=bin_minutes,
        readings=0 if series is None else len(series),
        bins=bins,
    )


def _decode_day_cursor(cursor: str) -> date:
    try:
        return date.fromisoformat(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ProblemError(
            400, "invalid-cursor", "Invalid cursor", "the cursor is not one this API returned"
        ) from exc


def _day_out(day: DaySummary, unit: Unit) -> DayOut:
    def conv(value: float | None) -> float | None:
        return None if value is None else from_mg_dl(value, unit)

    def tag(stats: Any) -> TagStatsOut:
        return TagStatsOut(
            readings=stats.readings, mean=conv(stats.mean_mg_dl), pct_in_target=stats.pct_in_target
        )

    return DayOut(
        date=day.date,
        timezone=day.timezone,
        start=day.start,
        end=day.end,
        hours=day.hours,
        readings=day.readings,
        mean=conv(day.mean_mg_dl),
        min=conv(day.min_mg_dl),
        max=conv(day.max_mg_dl),
        sd=conv(day.sd_mg_dl),
        bands=day.bands,
        hypo_level1=None if day.hypo is None else day.hypo.level1,
        hypo_level2=None if day.hypo is None else day.hypo.level2,
        hypo_counted=None if day.hypo is None else day.hypo.counted,
        fasting=tag(day.fasting),
        before_meal=tag(day.before_meal),
        after_meal=tag(day.after_meal),
        meal_pairs=day.meal_pairs,
        mean_rise=conv(day.mean_rise_mg_dl),
    )


@router.get(
    "/patients/{patient_id}/days",
    response_model=DaysPage,
    summary="Daily summaries in the patient's own days (their zone, DST and travel)",
)
async def days(
    request: Request,
    patient: Patient,
    start_date: Annotated[date | None, Query(description="first local date")] = None,
    end_date: Annotated[date | None, Query(description="last local date (default: today)")] = None,
    unit: UnitParam = Unit.MG_DL,
    source: SourceParam = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DAYS_PAGE)] = DEFAULT_DAYS_PAGE,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> DaysPage:
    now = datetime.now(UTC)
    last = end_date or now.astimezone(patient.zones).date()
    first = start_date or last - (DEFAULT_PERIOD - timedelta(days=1))
    if last < first:
        raise ProblemError(
            422, "invalid-period", "Invalid period", "end_date must not be before start_date"
        )
    if (last - first) > MAX_PERIOD:
        raise ProblemError(
            422, "period-too-long", "Period too long", f"at most {MAX_PERIOD.days} days"
        )
    if cursor:
        last = min(last, _decode_day_cursor(cursor))
    page_first = max(first, last - timedelta(days=limit - 1))
    if last < page_first:
        return DaysPage(patient_id=patient.id, unit=unit, items=[], next_cursor=None)
    # A day at the edge of a zone change may start before its own local midnight in another
    # zone; a day of margin each side lets the date of each reading decide.
    fetch_start = patient.zones.local_midnight(page_first) - timedelta(days=1)
    fetch_end = patient.zones.local_midnight(last + timedelta(days=1)) + timedelta(days=1)
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(
            conn, patient.id, fetch_start, fetch_end, source=source, with_meals=True
        )
    series = fetched.series or GlucoseSeries.build([], [], Unit.MG_DL, source or Source.METER)
    computed = daily_summaries(series, patient.zones, page_first, last)
    next_day = page_first - timedelta(days=1)
    next_cursor = (
        base64.urlsafe_b64encode(next_day.isoformat().encode()).decode()
        if next_day >= first
        else None
    )
    return DaysPage(
        patient_id=patient.id,
        unit=unit,
        items=[_day_out(d, unit) for d in reversed(computed)],
        next_cursor=next_cursor,
    )
