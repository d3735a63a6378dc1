"""What a Nightscout site reads and writes in the database.

Readings are read from `counted_readings` (what counts: the patient's, claimed, not control
solution) and written only through the one intake (`core.intake.write`), in one transaction
with the calibrations of the same upload; the upload is answered after that commit.
Treatments, device status and calibrations live in their own tables (migration 0010).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from api.nightscout import entries
from api.nightscout.entries import Calibration, Refused, StoredReading, UploadedReading
from api.nightscout.query import Query
from api.nightscout.sites import Conn, Site
from api.nightscout.treatments import DeviceStatus, Treatment
from core.contract import MeterInfo
from core.intake import DecodedBatch, Rejected, decode_items, write
from core.vocabulary import SourceKind

# Where uploads say they came from, in dead letters and `readings.sender`.
ENTRIES_TOPIC = "nightscout/entries"
TREATMENTS_TOPIC = "nightscout/treatments"


def sender_of(site: Site) -> str:
    """A site's uploads name the site (its stable id, not the path that rotates)."""
    return f"nightscout-{site.id}"


# -- reading ---------------------------------------------------------------------------------

_BOUNDS = """
  AND {col} >= %(after)s AND (%(after_inclusive)s OR {col} > %(after)s)
  AND (%(before)s::timestamptz IS NULL OR {col} < %(before)s
       OR (%(before_inclusive)s AND {col} = %(before)s))
"""

# One reading per device, source and instant: where an app corrected a value (both are kept,
# flagged as a conflict), followers get the latest, as Nightscout's upsert would show.
_READINGS = f"""
SELECT identity, measured_at, device, source, mg_dl, context FROM (
    SELECT DISTINCT ON (device, source, measured_at)
           identity, measured_at, device, source, mg_dl, context
    FROM counted_readings
    WHERE patient_id = %(patient)s AND source = ANY (%(sources)s)
    {_BOUNDS.format(col="measured_at")}
    ORDER BY device, source, measured_at, received_at DESC
) latest
ORDER BY measured_at DESC, device
LIMIT %(count)s
"""

_CALIBRATIONS = f"""
SELECT device, at, slope, intercept, scale, document FROM nightscout_calibrations
WHERE patient_id = %(patient)s {_BOUNDS.format(col="at")}
ORDER BY at DESC LIMIT %(count)s
"""

_TREATMENTS = f"""
SELECT document FROM nightscout_treatments
WHERE patient_id = %(patient)s {_BOUNDS.format(col="created_at")}
ORDER BY created_at DESC LIMIT %(count)s
"""

_DEVICESTATUS = f"""
SELECT id, document FROM nightscout_devicestatus
WHERE patient_id = %(patient)s {_BOUNDS.format(col="created_at")}
ORDER BY created_at DESC, id DESC LIMIT %(count)s
"""


def _params(patient_id: uuid.UUID, query: Query, now: datetime) -> dict[str, Any]:
    after, before = query.window(now)
    return {
        "patient": patient_id,
        "after": after.at,
        "after_inclusive": after.inclusive,
        "before": before.at if before else None,
        "before_inclusive": before.inclusive if before else False,
        "count": query.count,
    }


async def entry_documents(
    conn: Conn, patient_id: uuid.UUID, query: Query, kinds: Sequence[str], now: datetime
) -> list[dict[str, Any]]:
    """Entries of these types, newest first, at most `query.count`."""
    params = _params(patient_id, query, now)
    docs: list[dict[str, Any]] = []
    sources = [entries.SOURCES[k].value for k in kinds if k in entries.SOURCES]
    if sources:
        cur = await conn.execute(_READINGS, {**params, "sources": sources})
        for identity, at, device, source, mg_dl, context in await cur.fetchall():
            docs.append(
                entries.reading_document(
                    StoredReading(identity, at, device, SourceKind(source), mg_dl, context)
                )
            )
    if entries.CAL in kinds:
        cur = await conn.execute(_CALIBRATIONS, params)
        for device, at, slope, intercept, scale, document in await cur.fetchall():
            offset = (document or {}).get("utcOffset", 0)
            docs.append(
                entries.calibration_document(
                    Calibration(device, at, offset, slope, intercept, scale)
                )
            )
    docs.sort(key=lambda d: d["date"], reverse=True)
    return docs[: query.count]


async def treatment_documents(
    conn: Conn, patient_id: uuid.UUID, query: Query, now: datetime
) -> list[dict[str, Any]]:
    cur = await conn.execute(_TREATMENTS, _params(patient_id, query, now))
    return [row[0] for row in await cur.fetchall()]


async def devicestatus_documents(
    conn: Conn, patient_id: uuid.UUID, query: Query, now: datetime
) -> list[dict[str, Any]]:
    cur = await conn.execute(_DEVICESTATUS, _params(patient_id, query, now))
    return [{**document, "_id": f"{row_id:024x}"} for row_id, document in await cur.fetchall()]


async def store_devicestatus(
    conn: Conn, patient_id: uuid.UUID, statuses: Sequence[DeviceStatus]
) -> list[dict[str, Any]]:
    stored = []
    for status in statuses:
        cur = await conn.execute(
            "INSERT INTO nightscout_devicestatus (patient_id, created_at, device, document)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (patient_id, status.created_at, status.device, Jsonb(status.document)),
        )
        row = await cur.fetchone()
        assert row is not None
        stored.append({**status.document, "_id": f"{row[0]:024x}"})
    return stored


# -- writing through the intake ---------------------------------------------------------------


@dataclass
class Upload:
    """One upload request, parsed: readings grouped by device and source, calibrations, and
    what was refused before validation (no date, an unknown type)."""

    readings: dict[tuple[str, SourceKind], list[UploadedReading]] = field(default_factory=dict)
    calibrations: list[Calibration] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def split(parsed: Sequence[entries.Parsed]) -> Upload:
    upload = Upload()
    for item in parsed:
        if isinstance(item, UploadedReading):
            upload.readings.setdefault((item.device, item.source), []).append(item)
        elif isinstance(item, Calibration):
            upload.calibrations.append(item)
        else:
            upload.refused.append(item)
    return upload


def _batches(site: Site, upload: Upload) -> list[DecodedBatch]:
    """One batch per device and source, validated by the intake (bad readings become dead
    letters, their batch mates are kept)."""
    out = []
    for (device, _source), items in upload.readings.items():
        wires = [item.wire for item in items]
        out.append(
            decode_items(
                ENTRIES_TOPIC,
                json.dumps(wires, default=str).encode(),
                sender_of(site),
                uuid.uuid4(),
                MeterInfo(serial=device, manufacturer="Nightscout upload"),
                wires,
                patient_id=site.patient_id,
                claims_device=True,
            )
        )
    return out


def _refused_letter(site: Site, topic: str, refused: Refused) -> Rejected:
    evidence = json.dumps({"index": refused.index, "document": refused.document}, default=str)
    return Rejected(topic, sender_of(site), evidence.encode(), refused.reason, site.patient_id)


_CALIBRATION = """
INSERT INTO nightscout_calibrations (patient_id, device, at, slope, intercept, scale, document)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (patient_id, device, at) DO UPDATE SET
    slope = EXCLUDED.slope, intercept = EXCLUDED.intercept, scale = EXCLUDED.scale,
    document = EXCLUDED.document, received_at = now()
"""


def write_entries(pool: ConnectionPool[Any], site: Site, upload: Upload) -> list[dict[str, Any]]:
    """Store an upload in one transaction; the stored documents, once it is committed."""
    batches = _batches(site, upload)
    letters = [_refused_letter(site, ENTRIES_TOPIC, r) for r in upload.refused]
    with pool.connection() as conn, conn.transaction():
        write(conn, batches, letters)
        for c in upload.calibrations:
            doc = entries.calibration_document(c)
            conn.execute(
                _CALIBRATION,
                (site.patient_id, c.device, c.at, c.slope, c.intercept, c.scale, Jsonb(doc)),
            )
    documents = [
        entries.uploaded_document(site.patient_id, b.meter.serial, r.source_kind, r)
        for b in batches
        for r in b.readings
    ]
    documents += [entries.calibration_document(c) for c in upload.calibrations]
    return documents


_TREATMENT = """
INSERT INTO nightscout_treatments (patient_id, ns_id, created_at, event_type, carbs, insulin,
                                   document)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (patient_id, ns_id) DO UPDATE SET
    created_at = EXCLUDED.created_at, event_type = EXCLUDED.event_type,
    carbs = EXCLUDED.carbs, insulin = EXCLUDED.insulin, document = EXCLUDED.document,
    received_at = now()
"""


def write_treatments(
    pool: ConnectionPool[Any], site: Site, treatments: Sequence[Treatment], refused: list[Refused]
) -> list[dict[str, Any]]:
    """Treatments upserted by their Nightscout identity and the refused ones dead-lettered
    (through the intake's writer), in one transaction."""
    letters = [_refused_letter(site, TREATMENTS_TOPIC, r) for r in refused]
    with pool.connection() as conn, conn.transaction():
        if letters:
            write(conn, [], letters)
        for t in treatments:
            conn.execute(
                _TREATMENT,
                (
                    site.patient_id,
                    t.ns_id,
                    t.created_at,
                    t.event_type,
                    t.carbs,
                    t.insulin,
                    Jsonb(t.document),
                ),
            )
    return [t.document for t in treatments]


def new_pool(database_url: str, max_size: int) -> ConnectionPool[Any]:
    return ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        open=False,
        kwargs={"autocommit": False},
        connection_class=psycopg.Connection,
    )
