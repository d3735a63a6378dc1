"""Trends of one patient, one source at a time: the clinical report of a period (the typed
model `core.metrics.report`, the one `glucobridge metrics` prints), the previous period
beside it, the AGP, and daily summaries in the patient's own days. Each answer says which
source it used (asked for, or CGM when the period holds sensor readings, else the meter)
and how many readings of the other sources the period holds. Pure computation lives in
core/; this module fetches, calls it and shapes the answer."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.patient_scope import Patient, pool_of
from api.problems import ProblemError, require_zoned
from api.series import FetchedSeries, fetch_series
from core.days import DaySummary, TagStats, daily_summaries
from core.metrics import (
    DEFAULT_AGP_BIN_MINUTES,
    BandPercentages,
    GlucoseSeries,
    Period,
    Report,
    Source,
    agp_bins,
    summarize,
)
from core.metrics.report import AgpBinOut, BandShares
from core.metrics.sufficiency import meter_sufficiency
from core.units import Unit, from_mg_dl
from core.vocabulary import SourceKind

router = APIRouter(prefix="/api/v1")

# The consensus report covers 14 days; it is the default period.
DEFAULT_PERIOD = timedelta(days=14)
# A year is the longest period a clinician reviews at once; longer requests are refused
# rather than loading tens of millions of readings into one response.
MAX_PERIOD = timedelta(days=366)
# Daily summaries per page: a month at a glance by default, a quarter at most.
DEFAULT_DAYS_PAGE = 31
MAX_DAYS_PAGE = 92
# Days fetched beyond a page of days, each side: an event or a pre/post-meal pair that
# starts on a page's day may end on the next, and a day at a zone change may begin before
# its own local midnight in another zone.
DAYS_MARGIN = timedelta(days=1)

Start = Annotated[
    datetime | None, Query(description="period start, inclusive (default: end - 14 days)")
]
End = Annotated[datetime | None, Query(description="period end, exclusive (default: now)")]
UnitParam = Annotated[Unit, Query(description="unit of glucose values in the answer")]
ReportSource = Literal[SourceKind.CGM, SourceKind.METER]
SourceParam = Annotated[
    ReportSource | None,
    Query(
        description="the readings to compute on: cgm (sensor) or meter (fingersticks); "
        "default: cgm when the patient has sensor readings in the period, else meter"
    ),
]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceCounts(_Out):
    """Readings per source in the period."""

    cgm: int = 0
    meter: int = 0
    lab: int = 0


class SourceUsed(_Out):
    """Which readings an answer is computed on, and what else the period holds."""

    source: ReportSource = Field(description="the source every number is computed on")
    chosen_by: Literal["request", "default"]
    other_sources: SourceCounts = Field(
        description="readings of the other sources in the period, not used in this answer"
    )
    control_excluded: int = Field(description="control-solution tests in the period, never counted")


class TrendsOut(_Out):
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    unit: Unit
    timezone: str
    source: SourceUsed
    # The same report `glucobridge metrics` prints; None when the source has no readings in
    # the period.
    report: Report | None


class Change(_Out):
    """current - previous, in the answer's unit; None where either period lacks it."""

    readings: int | None
    mean: float | None
    sd: float | None
    cv_pct: float | None
    gmi_pct: float | None
    in_ranges: BandShares | None = Field(description="percentage points per band")
    lbgi: float | None
    hbgi: float | None
    hypo_level1: int | None
    hypo_level2: int | None


class ComparisonOut(_Out):
    current: TrendsOut
    previous: TrendsOut  # the same source as `current`, over the equal period before it
    change: Change


class AgpOut(_Out):
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    unit: Unit
    timezone: str
    source: SourceUsed
    bin_minutes: int
    readings: int
    withheld: bool = Field(
        description="fingersticks below the sufficiency rule: no AGP (bins empty)"
    )
    # A fixed-size profile (at most 1440 / bin_minutes bins), not a collection: not paged.
    bins: list[AgpBinOut]


class TagStatsOut(_Out):
    readings: int
    mean: float | None
    pct_in_target: float | None


class IntervalOut(_Out):
    start: datetime
    end: datetime


class DayOut(_Out):
    date: date
    timezone: str
    start: datetime
    end: datetime
    hours: float = Field(description="the day's true length: 23/25 on DST days, other on travel")
    intervals: list[IntervalOut] = Field(
        description="the stretches of time with this local date (two when travel repeats it)"
    )
    readings: int
    mean: float | None
    min: float | None
    max: float | None
    sd: float | None
    bands: BandShares | None
    hypo_level1: int | None = Field(description="events starting this day (CGM) or readings")
    hypo_level2: int | None
    hypo_counted: Literal["events", "readings"] | None
    fasting: TagStatsOut
    before_meal: TagStatsOut
    after_meal: TagStatsOut
    meal_pairs: int = Field(description="pairs opened (fasting or before-meal) this day")
    unpaired_after_meal: int
    mean_rise: float | None


class DaysPage(_Out):
    patient_id: uuid.UUID
    unit: Unit
    source: SourceUsed
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


ChosenBy = Literal["request", "default"]


def _chosen_by(asked: Source | None) -> ChosenBy:
    return "default" if asked is None else "request"


def _used(fetched: FetchedSeries, chosen_by: ChosenBy) -> SourceUsed:
    return SourceUsed(
        source=fetched.source,  # type: ignore[arg-type]  # fetch_series returns cgm or meter
        chosen_by=chosen_by,
        other_sources=SourceCounts(**{k.value: v for k, v in fetched.other_sources.items()}),
        control_excluded=fetched.control_excluded,
    )


async def _trends(
    request: Request,
    patient: Patient,
    start: datetime,
    end: datetime,
    unit: Unit,
    source: Source | None,
    chosen_by: ChosenBy,
) -> TrendsOut:
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(conn, patient.id, start, end, source=source, with_meals=True)
    series = fetched.series
    report = None
    if series is not None:
        report = summarize(series, patient.zones, period=Period(start, end), unit=unit)
    return TrendsOut(
        patient_id=patient.id,
        start=start,
        end=end,
        unit=unit,
        timezone=patient.timezone,
        source=_used(fetched, chosen_by),
        report=report,
    )


@router.get(
    "/patients/{patient_id}/trends",
    response_model=TrendsOut,
    summary="The clinical report of a period, one source: time (CGM) or readings (meter) in "
    "ranges, mean, SD, CV, GMI, hypoglycaemia, sufficiency, consensus goals, AGP",
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
    return await _trends(
        request, patient, period_start, period_end, unit, source, _chosen_by(source)
    )


def _difference(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else now - before


def _change(current: Report | None, previous: Report | None) -> Change:
    if current is None or previous is None:
        return Change(
            readings=None,
            mean=None,
            sd=None,
            cv_pct=None,
            gmi_pct=None,
            in_ranges=None,
            lbgi=None,
            hbgi=None,
            hypo_level1=None,
            hypo_level2=None,
        )
    a, b = current.in_ranges, previous.in_ranges
    return Change(
        readings=current.readings - previous.readings,
        mean=current.mean - previous.mean,
        sd=_difference(current.sd, previous.sd),
        cv_pct=_difference(current.cv_pct, previous.cv_pct),
        gmi_pct=_difference(current.gmi_pct, previous.gmi_pct),
        in_ranges=BandShares(
            very_low=a.very_low - b.very_low,
            low=a.low - b.low,
            in_range=a.in_range - b.in_range,
            high=a.high - b.high,
            very_high=a.very_high - b.very_high,
        ),
        lbgi=current.lbgi - previous.lbgi,
        hbgi=current.hbgi - previous.hbgi,
        hypo_level1=current.hypoglycaemia.level1 - previous.hypoglycaemia.level1,
        hypo_level2=current.hypoglycaemia.level2 - previous.hypoglycaemia.level2,
    )


@router.get(
    "/patients/{patient_id}/trends/comparison",
    response_model=ComparisonOut,
    summary="A period beside the previous period of equal length, one source for both",
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
    chosen_by = _chosen_by(source)
    current = await _trends(request, patient, period_start, period_end, unit, source, chosen_by)
    previous = await _trends(
        request,
        patient,
        period_start - length,
        period_start,
        unit,
        current.source.source,
        chosen_by,
    )
    return ComparisonOut(
        current=current, previous=previous, change=_change(current.report, previous.report)
    )


@router.get(
    "/patients/{patient_id}/agp",
    response_model=AgpOut,
    summary="Ambulatory Glucose Profile of one source: percentiles 5/25/50/75/95 by local "
    "time of day",
)
async def agp(
    request: Request,
    patient: Patient,
    start: Start = None,
    end: End = None,
    unit: UnitParam = Unit.MG_DL,
    source: SourceParam = None,
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
        fetched = await fetch_series(conn, patient.id, period_start, period_end, source=source)
    bins: list[AgpBinOut] = []
    series = fetched.series
    withheld = False
    if series is not None and series.source is Source.METER:
        period = Period(period_start, period_end)
        withheld = not meter_sufficiency(series.times, patient.zones, period).met
    if series is not None and not withheld:
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
        source=_used(fetched, _chosen_by(source)),
        bin_minutes=bin_minutes,
        readings=0 if series is None else len(series),
        withheld=withheld,
        bins=bins,
    )


def _decode_day_cursor(cursor: str) -> date:
    try:
        return date.fromisoformat(base64.urlsafe_b64decode(cursor.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ProblemError(
            400, "invalid-cursor", "Invalid cursor", "the cursor is not one this API returned"
        ) from exc


def _bands(bands: BandPercentages | None) -> BandShares | None:
    if bands is None:
        return None
    return BandShares(
        very_low=bands.very_low,
        low=bands.low,
        in_range=bands.in_range,
        high=bands.high,
        very_high=bands.very_high,
    )


def _day_out(day: DaySummary, unit: Unit) -> DayOut:
    def conv(value: float | None) -> float | None:
        return None if value is None else from_mg_dl(value, unit)

    def tag(stats: TagStats) -> TagStatsOut:
        return TagStatsOut(
            readings=stats.readings, mean=conv(stats.mean_mg_dl), pct_in_target=stats.pct_in_target
        )

    return DayOut(
        date=day.date,
        timezone=day.timezone,
        start=day.start,
        end=day.end,
        hours=day.hours,
        intervals=[IntervalOut(start=i.start, end=i.end) for i in day.intervals],
        readings=day.readings,
        mean=conv(day.mean_mg_dl),
        min=conv(day.min_mg_dl),
        max=conv(day.max_mg_dl),
        sd=conv(day.sd_mg_dl),
        bands=_bands(day.bands),
        hypo_level1=None if day.hypo is None else day.hypo.level1,
        hypo_level2=None if day.hypo is None else day.hypo.level2,
        hypo_counted=None if day.hypo is None else day.hypo.counted,
        fasting=tag(day.fasting),
        before_meal=tag(day.before_meal),
        after_meal=tag(day.after_meal),
        meal_pairs=day.meal_pairs,
        unpaired_after_meal=day.unpaired_after_meal,
        mean_rise=conv(day.mean_rise_mg_dl),
    )


@router.get(
    "/patients/{patient_id}/days",
    response_model=DaysPage,
    summary="Daily summaries of one source in the patient's own days (their zone, DST and travel)",
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
    page_days = [page_first + timedelta(days=k) for k in range((last - page_first).days + 1)]
    # What belongs to the page's days: from the earliest instant of any of them to the
    # latest (a repeated date may end after the next date began), with a margin.
    bounds = [patient.zones.day_bounds(d) for d in page_days] or [patient.zones.day_bounds(last)]
    fetch_start = min(b.start for b in bounds) - DAYS_MARGIN
    fetch_end = max(b.end for b in bounds) + DAYS_MARGIN
    async with pool_of(request).connection() as conn:
        fetched = await fetch_series(
            conn, patient.id, fetch_start, fetch_end, source=source, with_meals=True
        )
    used = _used(fetched, _chosen_by(source))
    if last < page_first:
        return DaysPage(patient_id=patient.id, unit=unit, source=used, items=[], next_cursor=None)
    series = fetched.series or GlucoseSeries.build([], [], Unit.MG_DL, fetched.source)
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
        source=used,
        items=[_day_out(d, unit) for d in reversed(computed)],
        next_cursor=next_cursor,
    )
