"""History from a CSV file into a patient, through the same validation and dedupe as live
readings: the file becomes reading batches as a bridge would publish them, decoded by
`ingest.decode` and stored by `ingest.store`; re-importing a file stores nothing twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import BaseModel

from api.access import OwnerAccess
from api.problems import PATIENT_RESPONSES, Problem, ProblemError, invalid
from api.state import settings_of
from api.users import TimeZone
from core.contract import IMPORT_BRIDGE_ID, READINGS_SCHEMA, readings_topic
from core.glucose_csv import IGLU_VALUE_COLUMN, GlucoseCsvError, SubjectReadings, parse_glucose_csv
from core.units import Unit
from ingest import store
from ingest.decode import DecodedBatch, Rejected, decode

router = APIRouter(prefix="/api/v1", tags=["imports"])

# The bridge id imported batches carry; registering a real bridge under it is refused
# because bridge ids are unique (the API reserves it in the bridges table on first import).
IMPORT_BRIDGE = IMPORT_BRIDGE_ID
# A year of 5-minute CGM is ~6 MB of CSV; beyond this, split the file.
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# The readings envelope allows 5000 readings per batch (core.contract).
IMPORT_BATCH = 5000
SAMPLE_TYPE = {"meter": "capillary_whole_blood", "cgm": "interstitial_fluid"}


class ImportResult(BaseModel):
    subject: str
    meter_serial: str
    stored: int
    duplicates: int
    rejected: int


def _pick(subjects: dict[str, SubjectReadings], subject: str | None) -> SubjectReadings:
    if subject is not None:
        if subject not in subjects:
            raise invalid(f"no subject {subject!r} in the file (found: {', '.join(subjects)})")
        return subjects[subject]
    if len(subjects) != 1:
        raise invalid(f"the file holds several subjects; name one of: {', '.join(subjects)}")
    return next(iter(subjects.values()))


def _batches(
    readings: SubjectReadings, serial: str, tz: ZoneInfo, sample_type: str
) -> list[DecodedBatch | Rejected]:
    seconds = readings.times.astype("datetime64[s]").astype(np.int64)
    rows = []
    for at, value in zip(seconds.tolist(), readings.values.tolist(), strict=True):
        instant = datetime.fromtimestamp(at, UTC)
        rows.append(
            {
                # Imported history has no meter sequence; its identity is the meter time.
                "sequence_number": 0,
                "meter_time": instant.astimezone(tz).replace(tzinfo=None).isoformat(),
                "measured_at": instant.isoformat(),
                "value": value,
                "unit": readings.unit.value,
                "sample_type": sample_type,
            }
        )
    out = []
    for i in range(0, len(rows), IMPORT_BATCH):
        payload = json.dumps(
            {
                "schema": READINGS_SCHEMA,
                "bridge_id": IMPORT_BRIDGE,
                "batch_id": str(uuid.uuid4()),
                "meter": {"serial": serial, "manufacturer": "CSV import"},
                "readings": rows[i : i + IMPORT_BATCH],
            }
        ).encode()
        out.append(decode(readings_topic(IMPORT_BRIDGE), payload))
    return out


def _store(
    database_url: str, patient_id: uuid.UUID, serial: str, decoded: list[DecodedBatch | Rejected]
) -> tuple[int, int, int]:
    batches = [d for d in decoded if isinstance(d, DecodedBatch)]
    rejected = [d for d in decoded if isinstance(d, Rejected)]
    with psycopg.connect(database_url) as conn:
        # The import's meter belongs to the patient before its readings arrive.
        conn.execute(
            "INSERT INTO meters (serial, manufacturer, patient_id) VALUES (%s, 'CSV import', %s)"
            " ON CONFLICT (serial) DO NOTHING",
            (serial, patient_id),
        )
        conn.commit()
        outcomes = store.write(conn, batches, rejected)
    return (
        sum(o.stored for o in outcomes),
        sum(o.duplicates for o in outcomes),
        sum(o.rejected for o in outcomes) + len(rejected),
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
    source: Annotated[Literal["meter", "cgm"], Form()] = "meter",
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
    serial = f"import-{uuid.uuid5(access.patient_id, chosen.subject).hex}"
    decoded = _batches(chosen, serial, ZoneInfo(tz), SAMPLE_TYPE[source])
    stored, duplicates, rejected = await asyncio.to_thread(
        _store, settings_of(request).database_url, access.patient_id, serial, decoded
    )
    return ImportResult(
        subject=chosen.subject,
        meter_serial=serial,
        stored=stored,
        duplicates=duplicates,
        rejected=rejected,
    )
