"""History from a CSV file into a patient, through the same validation and dedupe as live
readings: the file becomes reading batches, validated and stored by the one intake
(`core.intake`); re-importing a file stores nothing twice. The file's device is the patient's
own (the patient uploaded it), one device per subject and column, so a CGM column and a
fingerstick column of one file never collide.

Local times are resolved by `core.wallclock`, as `glucobridge metrics` resolves them (a time
in a DST gap is read with the offset before the gap; an ambiguous one is its first occurrence
unless the file has passed it), and the answer says how many were ambiguous or nonexistent.
A reading's meter time is the wall time as the file wrote it, so two rows whose wall times
name one instant (02:30 in the spring gap and 03:30 after it) stay two readings."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel, Field

from api.access import OwnerAccess
from api.problems import PATIENT_RESPONSES, Problem, ProblemError, invalid
from api.state import settings_of
from api.users import TimeZone
from core.contract import IMPORT_BRIDGE_ID, MeterInfo
from core.glucose_csv import IGLU_VALUE_COLUMN, GlucoseCsvError, SubjectReadings, parse_glucose_csv
from core.intake import DecodedBatch, decode_items, write
from core.units import Unit
from core.vocabulary import SampleType, SourceKind

router = APIRouter(prefix="/api/v1", tags=["imports"])

# The bridge id imported batches carry; registering a real bridge under it is refused
# because bridge ids are unique (the API reserves it in the bridges table on first import).
IMPORT_BRIDGE = IMPORT_BRIDGE_ID
# A year of 5-minute CGM is ~6 MB of CSV; beyond this, split the file.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# The readings envelope allows 5000 readings per batch (core.contract).
IMPORT_BATCH = 5000
SAMPLE_TYPE = {
    SourceKind.METER: SampleType.CAPILLARY_WHOLE_BLOOD,
    SourceKind.CGM: SampleType.INTERSTITIAL_FLUID,
}
# Where imported batches say they came from (readings.sender), for the patient's record.
IMPORT_TOPIC = "import/csv"


class ImportResult(BaseModel):
    subject: str
    meter_serial: str
    stored: int
    duplicates: int
    rejected: int
    set_aside: int = Field(description="rows whose value is not a plausible glucose value")
    ambiguous_times: int = Field(description="local times in a DST fold (two instants)")
    nonexistent_times: int = Field(description="local times in a DST gap (no instant)")


def _pick(subjects: dict[str, SubjectReadings], subject: str | None) -> SubjectReadings:
    if subject is not None:
        if subject not in subjects:
            raise invalid(f"no subject {subject!r} in the file (found: {', '.join(subjects)})")
        return subjects[subject]
    if len(subjects) != 1:
        raise invalid(f"the file holds several subjects; name one of: {', '.join(subjects)}")
    return next(iter(subjects.values()))


def _batches(
    readings: SubjectReadings,
    patient_id: uuid.UUID,
    serial: str,
    source: SourceKind,
) -> list[DecodedBatch]:
    seconds = readings.times.astype("datetime64[s]").astype(np.int64)
    walls = readings.wall_times.astype("datetime64[s]").astype(np.int64)
    rows: list[dict[str, object]] = []
    for at, wall, value in zip(
        seconds.tolist(), walls.tolist(), readings.values.tolist(), strict=True
    ):
        rows.append(
            {
                # Imported history has no sequence numbers: its identity is its wall time
                # (as written) and value.
                "meter_time": datetime.fromtimestamp(wall, UTC).replace(tzinfo=None).isoformat(),
                "measured_at": datetime.fromtimestamp(at, UTC).isoformat(),
                "value": value,
                "unit": readings.unit.value,
                "source": source.value,
                "sample_type": SAMPLE_TYPE[source].value,
            }
        )
    meter = MeterInfo(serial=serial, manufacturer="CSV import")
    return [
        decode_items(
            IMPORT_TOPIC,
            json.dumps(rows[i : i + IMPORT_BATCH]).encode(),
            IMPORT_BRIDGE,
            uuid.uuid4(),
            meter,
            rows[i : i + IMPORT_BATCH],
            patient_id=patient_id,
            claims_device=True,
        )
        for i in range(0, len(rows), IMPORT_BATCH)
    ]


def _store(database_url: str, batches: list[DecodedBatch]) -> tuple[int, int, int]:
    with psycopg.connect(database_url) as conn:
        outcomes = write(conn, batches, [])
    return (
        sum(o.stored for o in outcomes),
        sum(o.duplicates for o in outcomes),
        sum(o.rejected for o in outcomes),
    )


@router.post(
    "/patients/{patient_id}/imports",
    response_model=ImportResult,
    summary="Import history from CSV (iglu or Shanghai layout) (the patient only)",
    responses={
        **PATIENT_RESPONSES,
        413: {"model": Problem, "description": "The file is too large"},
        422: {"model": Problem, "description": "The file cannot be read as glucose readings"},
    },
)
async def import_csv(
    request: Request,
    access: OwnerAccess,
    file: Annotated[UploadFile, File(description="CSV: iglu (id,time,gl) or Shanghai layout")],
    value_column: Annotated[
        str, Form(max_length=64, description="gl (iglu), cbg_mg_dl or cgm_mg_dl (Shanghai)")
    ] = IGLU_VALUE_COLUMN,
    unit: Annotated[Unit, Form()] = Unit.MG_DL,
    tz: Annotated[TimeZone, Form(description="zone of times written without one")] = "UTC",
    source: Annotated[SourceKind, Form(description="cgm or meter: what measured the column")] = (
        SourceKind.METER
    ),
    subject: Annotated[str | None, Form(max_length=200)] = None,
) -> ImportResult:
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise ProblemError(
            413, "too-large", "File too large", f"at most {MAX_IMPORT_BYTES // 2**20} MiB"
        )
    try:
        text = data.decode("utf-8-sig")
        subjects = parse_glucose_csv(
            text.splitlines(),
            value_column=value_column,
            unit=unit,
            tz=ZoneInfo(tz),
            default_subject=(file.filename or "import").rsplit(".", 1)[0] or "import",
        )
    except UnicodeDecodeError as exc:
        raise invalid(f"the file is not UTF-8 text ({exc.reason})") from exc
    except GlucoseCsvError as exc:
        raise invalid(str(exc)) from exc
    chosen = _pick(subjects, subject)
    if source not in SAMPLE_TYPE:
        raise invalid("source must be cgm or meter")
    # One device per subject, column and source: two columns of one file never collide.
    device_key = f"{chosen.subject}|{value_column}|{source.value}"
    serial = f"import-{uuid.uuid5(access.patient_id, device_key).hex}"
    decoded = _batches(chosen, access.patient_id, serial, source)
    stored, duplicates, rejected = await asyncio.to_thread(
        _store, settings_of(request).database_url, decoded
    )
    return ImportResult(
        subject=chosen.subject,
        meter_serial=serial,
        stored=stored,
        duplicates=duplicates,
        rejected=rejected,
        set_aside=len(chosen.set_aside),
        ambiguous_times=chosen.ambiguous_times,
        nonexistent_times=chosen.nonexistent_times,
    )
