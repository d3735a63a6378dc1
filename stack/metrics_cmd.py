"""`glucobridge metrics FILE.csv`: the clinical report of a CSV file, offline, as JSON.

Reads the iglu layout (`id,time,gl`) or the Shanghai layout (`time` plus the value column
named with `--value-column`) and prints, per subject, the report `core.metrics.summarize`
computes — the very model `GET /api/v1/patients/{id}/trends` returns — with what reading
the file met: rows set aside, wall times that were ambiguous or nonexistent in `--tz`
(resolved by `core.wallclock`, as the API's import does), readings outside `--start/--end`.
Bad input ends with a one-line reason and exit code 1.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import numpy as np
from pydantic import BaseModel, ConfigDict, RootModel

from core.glucose_csv import IGLU_VALUE_COLUMN, GlucoseCsvError, SubjectReadings, read_glucose_csv
from core.metrics import (
    DEFAULT_MIN_METER_READINGS_PER_DAY,
    REPORT_SOURCES,
    MetricsError,
    Period,
    Report,
    Source,
)
from core.metrics import summarize as summarize_series
from core.units import Unit
from core.wallclock import resolve


class SubjectOut(BaseModel):
    """One subject's report and what reading its rows met."""

    model_config = ConfigDict(extra="forbid")

    report: Report
    set_aside: int  # rows whose value is not a plausible glucose value
    ambiguous_times: int  # wall times in a DST fold (two instants; rule: core.wallclock)
    nonexistent_times: int  # wall times in a DST gap (no instant)
    outside_period: int  # readings before --start or from --end on


Output = RootModel[dict[str, SubjectOut]]


def _instant(text: str | None, zone: ZoneInfo, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(f"{text!r} is not a date or time", param_hint=option) from exc
    return parsed if parsed.tzinfo is not None else resolve(parsed, zone).instant


def _report(
    readings: SubjectReadings,
    source: Source,
    zone: ZoneInfo,
    bounds: tuple[datetime | None, datetime | None],
    output_unit: Unit,
    interval: np.timedelta64 | None,
    min_readings_per_day: int,
) -> SubjectOut:
    series = readings.to_series(source)
    start, end = bounds
    period = None
    outside = 0
    if start is not None or end is not None:
        whole = Period.local_days_of(series.times, zone)
        period = Period(start or whole.start, end or whole.end)
        inside = period.contains(series.times)
        outside = int((~inside).sum())
        series = series.select(inside)
        if len(series) == 0:
            raise MetricsError("no readings in the period")
    report = summarize_series(
        series,
        zone,
        period=period,
        unit=output_unit,
        interval=interval,
        min_readings_per_day=min_readings_per_day,
    )
    return SubjectOut(
        report=report,
        set_aside=len(readings.set_aside),
        ambiguous_times=readings.ambiguous_times,
        nonexistent_times=readings.nonexistent_times,
        outside_period=outside,
    )


@click.command("metrics")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--value-column",
    default=IGLU_VALUE_COLUMN,
    show_default=True,
    help="Column holding glucose values, e.g. cbg_mg_dl or cgm_mg_dl for Shanghai files.",
)
@click.option(
    "--unit",
    type=click.Choice([u.value for u in Unit]),
    default=Unit.MG_DL.value,
    show_default=True,
    help="Unit of the values in the file.",
)
@click.option(
    "--tz",
    "tz_name",
    default="UTC",
    show_default=True,
    help="IANA zone of times written without an offset; also the zone of days and the AGP.",
)
@click.option(
    "--source",
    type=click.Choice([s.value for s in REPORT_SOURCES]),
    default=Source.CGM.value,
    show_default=True,
    help="What measured the column: cgm (consensus report) or meter (fingerstick report).",
)
@click.option(
    "--start",
    default=None,
    help="Period start (a date or time; without an offset, in --tz) [default: local "
    "midnight of the first reading's day].",
)
@click.option(
    "--end",
    default=None,
    help="Period end, exclusive [default: local midnight after the last reading's day].",
)
@click.option(
    "--output-unit",
    type=click.Choice([u.value for u in Unit]),
    default=Unit.MG_DL.value,
    show_default=True,
    help="Unit of glucose values in the report.",
)
@click.option(
    "--interval",
    "interval_minutes",
    type=click.IntRange(min=1),
    default=None,
    help="CGM sensor interval in minutes [default: median spacing of the readings].",
)
@click.option(
    "--min-readings-per-day",
    type=click.IntRange(min=1),
    default=DEFAULT_MIN_METER_READINGS_PER_DAY,
    show_default=True,
    help="Meter data: a day counts as sufficient with at least this many readings.",
)
def metrics(
    file: Path,
    value_column: str,
    unit: str,
    tz_name: str,
    source: str,
    start: str | None,
    end: str | None,
    output_unit: str,
    interval_minutes: int | None,
    min_readings_per_day: int,
) -> None:
    """Print the clinical report (time or readings in ranges, mean, SD, CV, GMI, LBGI/HBGI,
    hypoglycaemia, sufficiency, AGP ...) of each subject in FILE."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.ClickException(f"unknown time zone {tz_name!r}") from exc
    bounds = (_instant(start, zone, "--start"), _instant(end, zone, "--end"))
    try:
        subjects = read_glucose_csv(file, value_column=value_column, unit=Unit(unit), tz=zone)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{file}: no such file") from exc
    except OSError as exc:
        raise click.ClickException(f"{file}: {exc.strerror or exc}") from exc
    except GlucoseCsvError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc

    interval = None if interval_minutes is None else np.timedelta64(interval_minutes, "m")
    out: dict[str, SubjectOut] = {}
    for subject, readings in subjects.items():
        try:
            out[subject] = _report(
                readings,
                Source(source),
                zone,
                bounds,
                Unit(output_unit),
                interval,
                min_readings_per_day,
            )
        except MetricsError as exc:
            raise click.ClickException(f"{file}: subject {subject!r}: {exc}") from exc
        for reason in readings.set_aside:
            click.echo(f"warning: {file}: set aside {reason}", err=True)
        for count, kind in (
            (readings.ambiguous_times, "ambiguous"),
            (readings.nonexistent_times, "nonexistent"),
        ):
            if count:
                click.echo(
                    f"warning: {file}: subject {subject!r}: {count} {kind} local time(s) in "
                    f"{tz_name} (DST); resolved as glucobridge's imports resolve them",
                    err=True,
                )
    click.echo(Output(out).model_dump_json(indent=2))
