"""Writing decoded batches to TimescaleDB: COPY into a staging table, then one statement that
claims each reading's identity and inserts only the readings whose identity was new."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from ingest.decode import DecodedBatch, Rejected

log = logging.getLogger("glucobridge.ingest")

_COLUMNS = (
    "measured_at",
    "meter_serial",
    "sequence_number",
    "meter_time",
    "time_offset_minutes",
    "bridge_id",
    "batch_id",
    "value",
    "unit",
    "mg_dl",
    "sample_type",
    "sample_location",
    "sensor_status",
    "meal",
    "carbohydrate_g",
    "context",
)
_COLUMN_LIST = ", ".join(_COLUMNS)

# Staging lives per connection and empties itself at every commit.
_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings
    (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

_REGISTER_METERS = """
INSERT INTO meters (serial, manufacturer, model)
SELECT DISTINCT ON (serial) serial, manufacturer, model
FROM unnest(%(serials)s::text[], %(manufacturers)s::text[], %(models)s::text[])
    AS m(serial, manufacturer, model)
ON CONFLICT (serial) DO NOTHING
"""

# An identity seen before (a redelivery, a re-sync) inserts nothing; readings of a meter no
# patient has claimed are stored with patient_id NULL and attach when it is claimed.
_MERGE = f"""
WITH fresh AS (
    INSERT INTO reading_identities (meter_serial, sequence_number, meter_time, measured_at)
    SELECT DISTINCT ON (meter_serial, sequence_number, meter_time)
           meter_serial, sequence_number, meter_time, measured_at
    FROM staging_readings
    ON CONFLICT DO NOTHING
    RETURNING meter_serial, sequence_number, meter_time
)
INSERT INTO readings ({_COLUMN_LIST}, patient_id)
SELECT DISTINCT ON (s.meter_serial, s.sequence_number, s.meter_time)
       {", ".join("s." + c for c in _COLUMNS)}, m.patient_id
FROM staging_readings s
JOIN fresh f USING (meter_serial, sequence_number, meter_time)
LEFT JOIN meters m ON m.serial = s.meter_serial
RETURNING batch_id
"""

_DEAD_LETTER = """
INSERT INTO dead_letters (topic, bridge_id, payload, reason)
VALUES (%(topic)s, %(bridge_id)s, %(payload)s, %(reason)s)
"""


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: uuid.UUID
    bridge_id: str
    stored: int
    duplicates: int
    rejected: int


def write(
    conn: psycopg.Connection[tuple[object, ...]],
    batches: Sequence[DecodedBatch],
    rejected: Sequence[Rejected],
) -> list[BatchOutcome]:
    """Store batches and dead letters in one transaction; returns what happened per batch."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_CREATE_STAGING)
        if batches:
            meters = {b.meter.serial: b.meter for b in batches}
            cur.execute(
                _REGISTER_METERS,
                {
                    "serials": list(meters),
                    "manufacturers": [m.manufacturer for m in meters.values()],
                    "models": [m.model for m in meters.values()],
                },
            )
        with cur.copy(f"COPY staging_readings ({_COLUMN_LIST}) FROM STDIN") as copy:
            for batch in batches:
                for r in batch.readings:
                    copy.write_row(
                        (
                            r.measured_at,
                            batch.meter.serial,
                            r.sequence_number,
                            r.meter_time,
                            r.time_offset_minutes,
                            batch.bridge_id,
                            batch.batch_id,
                            r.value,
                            r.unit.value,
                            r.mg_dl,
                            r.sample_type,
                            r.sample_location,
                            r.sensor_status,
                            r.meal,
                            r.carbohydrate_g,
                            Jsonb(r.context) if r.context is not None else None,
                        )
                    )
        stored: Counter[uuid.UUID] = Counter()
        if batches:
            cur.execute(_MERGE)
            stored.update(row[0] for row in cur.fetchall())  # type: ignore[misc]
        dead = list(rejected) + [r for b in batches for r in b.rejected]
        if dead:
            cur.executemany(_DEAD_LETTER, [r.__dict__ for r in dead])
    return [
        BatchOutcome(
            b.batch_id,
            b.bridge_id,
            stored[b.batch_id],
            len(b.readings) - stored[b.batch_id],
            len(b.rejected),
        )
        for b in batches
    ]


def write_isolating_bad_batches(
    conn: psycopg.Connection[tuple[object, ...]],
    batches: list[DecodedBatch],
    rejected: list[Rejected],
) -> list[BatchOutcome]:
    """Write everything at once. If the database refuses the data itself (not a lost
    connection: say a text with a NUL byte), write batch by batch and dead-letter the batch
    it refuses, confirming it to the bridge as rejected so it is not re-sent forever."""
    try:
        return write(conn, batches, rejected)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as first_error:
        if len(batches) + len(rejected) <= 1 and batches:
            batch = batches[0]
            log.error("database refused batch %s: %s", batch.batch_id, first_error)
            reason = f"database refused the batch: {first_error}".replace("\x00", "")
            write(conn, [], [Rejected(batch.topic, batch.bridge_id, batch.payload, reason)])
            count = len(batch.readings) + len(batch.rejected)
            return [BatchOutcome(batch.batch_id, batch.bridge_id, 0, 0, count)]
        if not batches:
            raise
    outcomes = write(conn, [], rejected) if rejected else []
    for batch in batches:
        outcomes += write_isolating_bad_batches(conn, [batch], [])
    return outcomes
