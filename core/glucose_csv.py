"""Glucose readings from CSV files: the iglu layout and the Shanghai T1DM/T2DM layout.

iglu (`example_data_5_subject.csv`): a leading unnamed row-index column, then
`id,time,gl`; one file holds several subjects, told apart by `id`.

Shanghai (Zhao et al., Scientific Data 2023): `time` plus several value columns
(`cgm_mg_dl`, `cbg_mg_dl`, ...); one file is one patient and period, so the caller names the
subject (the file's stem) and the value column. Rows whose value cell is empty are skipped:
in that layout a row carries whichever measurement was taken at that minute.

Times without a zone are wall-clock times in the zone the caller gives, resolved to instants
by `core.wallclock` (the one rule imports and the command line share: a time in a DST gap is
read with the offset before the gap, an ambiguous one is its first occurrence unless the
subject's rows have already passed it); each subject counts the ambiguous and nonexistent
times it had. The wall time as written is kept beside the instant (a reading's meter time).
Times with an offset keep it. Anything else (a missing column, a value that is not a
number, an unreadable time) raises `GlucoseCsvError` naming the line and column. A number
that is not a plausible glucose value is set aside (`SubjectReadings.set_aside`) with the
same kind of reason, and the rest of the file is read.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import numpy as np

from core.contract import MAX_PLAUSIBLE_MG_DL, MIN_PLAUSIBLE_MG_DL
from core.metrics.series import TIME_DTYPE, FloatArray, GlucoseSeries, Source, TimeArray
from core.units import Unit, to_mg_dl
from core.wallclock import WallClock

TIME_COLUMN = "time"
ID_COLUMN = "id"
IGLU_VALUE_COLUMN = "gl"


class GlucoseCsvError(ValueError):
    """A glucose CSV file that cannot be read as such; says where and why."""

    def __init__(self, reason: str, *, line: int | None = None, column: str | None = None):
        self.reason = reason
        self.line = line
        self.column = column
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


@dataclass(frozen=True, eq=False)
class SubjectReadings:
    """One subject's readings as read from the file, in file order."""

    subject: str
    times: TimeArray  # UTC, datetime64[s]
    wall_times: TimeArray  # the local time as written (no zone), datetime64[s]
    values: FloatArray  # as written in the file, in `unit`
    unit: Unit
    # Rows whose value is a number but not a plausible glucose value (a typing slip such as
    # 2044.8 mg/dL): set aside with the reason, so one bad row does not lose the file.
    set_aside: tuple[GlucoseCsvError, ...] = ()
    ambiguous_times: int = 0  # wall times in a DST fold (two instants)
    nonexistent_times: int = 0  # wall times in a DST gap (no instant)

    def to_series(self, source: Source) -> GlucoseSeries:
        return GlucoseSeries.build(self.times, self.values, self.unit, source)


def read_glucose_csv(
    path: Path,
    *,
    value_column: str = IGLU_VALUE_COLUMN,
    unit: Unit = Unit.MG_DL,
    tz: tzinfo = UTC,
) -> dict[str, SubjectReadings]:
    """Read `path`; subjects keyed by the `id` column, or by the file's stem without one.

    Raises OSError when the file cannot be opened and GlucoseCsvError for bad content.
    """
    with path.open(encoding="utf-8-sig", newline="") as stream:
        try:
            return parse_glucose_csv(
                stream, value_column=value_column, unit=unit, tz=tz, default_subject=path.stem
            )
        except UnicodeDecodeError as exc:
            raise GlucoseCsvError(f"not UTF-8 text ({exc.reason})") from exc


def parse_glucose_csv(
    lines: Iterable[str],
    *,
    value_column: str = IGLU_VALUE_COLUMN,
    unit: Unit = Unit.MG_DL,
    tz: tzinfo = UTC,
    default_subject: str,
) -> dict[str, SubjectReadings]:
    """Parse CSV text (an open file or any iterable of lines); see `read_glucose_csv`."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise GlucoseCsvError("the file is empty")
    columns = {name.strip(): i for i, name in enumerate(header)}
    for required in (TIME_COLUMN, value_column):
        if required not in columns:
            found = ", ".join(repr(c) for c in columns if c) or "none"
            raise GlucoseCsvError(f"no column {required!r} (columns: {found})", line=1)
    time_at, value_at = columns[TIME_COLUMN], columns[value_column]
    id_at = columns.get(ID_COLUMN)

    collected: dict[str, tuple[list[int], list[int], list[float]]] = {}
    clocks: dict[str, WallClock] = {}
    set_aside: dict[str, list[GlucoseCsvError]] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank line
        cell = _cell(row, value_at, line, value_column).strip()
        if not cell:
            continue  # no measurement of this kind in this row
        value = _value(cell, unit, line, value_column)
        written = _time(_cell(row, time_at, line, TIME_COLUMN), line)
        subject = default_subject
        if id_at is not None:
            subject = _cell(row, id_at, line, ID_COLUMN).strip()
            if not subject:
                raise GlucoseCsvError("empty subject id", line=line, column=ID_COLUMN)
        implausible = _implausible(value, unit, line, value_column)
        if implausible is not None:
            set_aside.setdefault(subject, []).append(implausible)
            continue
        clock = clocks.setdefault(subject, WallClock(tz))
        instant = clock.instant(written)
        seconds, walls, values = collected.setdefault(subject, ([], [], []))
        seconds.append(int(instant.timestamp()))
        walls.append(_wall_seconds(written))
        values.append(value)
    if not collected:
        aside = [reason for reasons in set_aside.values() for reason in reasons]
        why = f" ({len(aside)} set aside, e.g. {aside[0]})" if aside else ""
        raise GlucoseCsvError(f"no readings in column {value_column!r}{why}")
    return {
        subject: SubjectReadings(
            subject=subject,
            times=np.array(seconds, dtype=np.int64).astype(TIME_DTYPE),
            wall_times=np.array(walls, dtype=np.int64).astype(TIME_DTYPE),
            values=np.array(values, dtype=np.float64),
            unit=unit,
            set_aside=tuple(set_aside.get(subject, ())),
            ambiguous_times=clocks[subject].ambiguous,
            nonexistent_times=clocks[subject].nonexistent,
        )
        for subject, (seconds, walls, values) in collected.items()
    }


def _cell(row: list[str], index: int, line: int, column: str) -> str:
    if index >= len(row):
        raise GlucoseCsvError("the row is shorter than the header", line=line, column=column)
    return row[index]


def _value(cell: str, unit: Unit, line: int, column: str) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise GlucoseCsvError(f"{cell!r} is not a number", line=line, column=column) from None
    if not math.isfinite(value):
        raise GlucoseCsvError(f"{cell!r} is not a glucose value", line=line, column=column)
    return value


def _implausible(value: float, unit: Unit, line: int, column: str) -> GlucoseCsvError | None:
    if MIN_PLAUSIBLE_MG_DL <= to_mg_dl(value, unit) <= MAX_PLAUSIBLE_MG_DL:
        return None
    return GlucoseCsvError(
        f"{value:g} {unit} is not a plausible glucose value "
        f"({MIN_PLAUSIBLE_MG_DL:g}-{MAX_PLAUSIBLE_MG_DL:g} mg/dL)",
        line=line,
        column=column,
    )


def _time(cell: str, line: int) -> datetime:
    """A time cell as written: naive (a wall time) or with its offset."""
    text = cell.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise GlucoseCsvError(
            f"{text!r} is not a time (expected e.g. 2015-06-06 16:50:27)",
            line=line,
            column=TIME_COLUMN,
        ) from None


_WALL_EPOCH = datetime(1970, 1, 1)


def _wall_seconds(written: datetime) -> int:
    """Whole seconds of the written local time since 1970-01-01 00:00 of that same clock."""
    return int((written.replace(tzinfo=None) - _WALL_EPOCH).total_seconds())
