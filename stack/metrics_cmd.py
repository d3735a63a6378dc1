"""`glucobridge metrics FILE.csv`: the clinical metrics of a CSV file, offline, as JSON.

Reads the iglu layout (`id,time,gl`) or the Shanghai layout (`time` plus the value column
named with `--value-column`) and prints one object per subject with what
`core.metrics.summarize` computes. Bad input ends with a one-line reason and exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import numpy as np

from core.glucose_csv import IGLU_VALUE_COLUMN, GlucoseCsvError, read_glucose_csv
from core.metrics import DEFAULT_MIN_METER_READINGS_PER_DAY, MetricsError, Source
from core.metrics import summarize as summarize_series
from core.metrics.export import summary_to_json
from core.units import Unit


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
    type=click.Choice([s.value for s in Source]),
    default=Source.CGM.value,
    show_default=True,
    help="cgm counts hypoglycaemia in episodes, meter in readings.",
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
    interval_minutes: int | None,
    min_readings_per_day: int,
) -> None:
    """Print time in range, mean, SD, CV, GMI, LBGI/HBGI and more for each subject in FILE."""
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise click.ClickException(f"unknown time zone {tz_name!r}") from exc
    try:
        subjects = read_glucose_csv(file, value_column=value_column, unit=Unit(unit), tz=zone)
    except FileNotFoundError as exc:
        raise click.ClickException(f"{file}: no such file") from exc
    except OSError as exc:
        raise click.ClickException(f"{file}: {exc.strerror or exc}") from exc
    except GlucoseCsvError as exc:
        raise click.ClickException(f"{file}: {exc}") from exc

    interval = None if interval_minutes is None else np.timedelta64(interval_minutes, "m")
    out: dict[str, dict[str, Any]] = {}
    for subject, readings in subjects.items():
        try:
            summary = summarize_series(
                readings.to_series(Source(source)),
                zone,
                interval=interval,
                min_readings_per_day=min_readings_per_day,
            )
        except MetricsError as exc:
            raise click.ClickException(f"{file}: subject {subject!r}: {exc}") from exc
        out[subject] = summary_to_json(summary) | {"set_aside": len(readings.set_aside)}
        for reason in readings.set_aside:
            click.echo(f"warning: {file}: set aside {reason}", err=True)
    click.echo(json.dumps(out, indent=2))
