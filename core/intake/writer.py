"""The one writer of readings: every source's batches go to TimescaleDB through here.

A write is one transaction: COPY the batch's readings into a staging table, claim each
reading's identity (an identity seen before inserts nothing: a redelivery, a re-sync, a
re-upload), insert the readings whose identity was new, keep held records and dead letters.
The caller says whose readings they are (`DecodedBatch.patient_id`); for a bridge's batch,
`place_bridge_batches` finds the patient the bridge was registered to, never one named in
the payload.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg
from psycopg.types.json import Jsonb

from core.intake.decode import DecodedBatch, Rejected
from core.intake.identity import held_identity, identity_of, identity_prefix, instant_of
from core.vocabulary import SourceKind

log = logging.getLogger("glucobridge.intake")

_COLUMNS = (
    "measured_at",
    "device",
    "sequence_number",
    "meter_time",
    "time_offset_minutes",
    "sender",
    "batch_id",
    "value",
    "unit",
    "mg_dl",
    "source",
    "control",
    "range_flag",
    "sample_type",
    "sample_location",
    "sensor_status",
    "meal",
    "carbohydrate_g",
    "carbohydrate_meal",
    "tester",
    "health",
    "hba1c_pct",
    "context",
    "raw_record",
    "raw_context",
    "identity",
    "patient_id",
)
_COLUMN_LIST = ", ".join(_COLUMNS)
# The staging COPY is binary, its types named up front: a fifth of the text COPY's cost
# per reading in Python (measured: 2.6 against 15 µs per row).
_STAGING_TYPES = (
    "timestamptz",  # measured_at
    "text",  # device
    "int4",  # sequence_number
    "timestamp",  # meter_time
    "int4",  # time_offset_minutes
    "text",  # sender
    "uuid",  # batch_id
    "float8",  # value
    "text",  # unit
    "float8",  # mg_dl
    "text",  # source
    "bool",  # control
    "text",  # range_flag
    "text",  # sample_type
    "text",  # sample_location
    "text[]",  # sensor_status
    "text",  # meal
    "float4",  # carbohydrate_g
    "text",  # carbohydrate_meal
    "text",  # tester
    "text",  # health
    "float4",  # hba1c_pct
    "jsonb",  # context
    "bytea",  # raw_record
    "bytea",  # raw_context
    "uuid",  # identity
    "uuid",  # patient_id
    "uuid",  # instant_key
)

# Staging lives per connection and empties itself at every commit; it is created once per
# connection (`_staged` remembers which, once the creating transaction committed).
_CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS staging_readings
    (LIKE readings INCLUDING DEFAULTS, instant_key uuid) ON COMMIT DELETE ROWS
"""

# The devices each patient's senders delivered from; a sender that speaks for the patient
# (an import, an upload) claims its device, a bridge's meter waits for the patient's claim.
# Part of the merge below (one round trip): its RETURNING says whether each is claimed.
_REGISTER_DEVICES = """
INSERT INTO meters (patient_id, serial, manufacturer, model, source, claimed_at)
SELECT DISTINCT ON (patient_id, serial) patient_id, serial, manufacturer, model, source,
       CASE WHEN claims THEN now() END
FROM unnest(%(patients)s::uuid[], %(serials)s::text[], %(manufacturers)s::text[],
            %(models)s::text[], %(sources)s::text[], %(claims)s::boolean[])
    AS d(patient_id, serial, manufacturer, model, source, claims)
ORDER BY patient_id, serial, claims DESC
ON CONFLICT (patient_id, serial) DO UPDATE SET
    manufacturer = coalesce(meters.manufacturer, EXCLUDED.manufacturer),
    model = coalesce(meters.model, EXCLUDED.model),
    claimed_at = coalesce(meters.claimed_at, EXCLUDED.claimed_at)
RETURNING patient_id, serial, claimed_at
"""

# An identity seen before inserts nothing. A reading of a device its patient has not claimed
# is stored awaiting the claim. A second value at an instant of a device without sequence
# numbers (same instant key, another identity) is stored and flagged.
_MERGE = f"""
WITH devices AS ({_REGISTER_DEVICES}),
fresh AS (
    INSERT INTO reading_identities (identity, instant_key, measured_at)
    SELECT DISTINCT ON (identity) identity, instant_key, measured_at
    FROM staging_readings
    ON CONFLICT DO NOTHING
    RETURNING identity, instant_key
),
-- Instants of this write that hold two values (both are new): one pass, not one per reading.
shared_instants AS (
    SELECT instant_key FROM staging_readings WHERE instant_key IS NOT NULL
    GROUP BY instant_key HAVING count(DISTINCT identity) > 1
),
stored AS (
INSERT INTO readings ({_COLUMN_LIST}, awaiting_claim, conflict)
SELECT DISTINCT ON (s.identity) {", ".join("s." + c for c in _COLUMNS)},
       m.claimed_at IS NULL,
       f.instant_key IS NOT NULL AND (
           f.instant_key IN (SELECT instant_key FROM shared_instants)
           OR EXISTS (SELECT 1 FROM reading_identities i  -- stored earlier (its own index)
                      WHERE i.instant_key = f.instant_key AND i.identity <> f.identity))
FROM staging_readings s
JOIN fresh f USING (identity)
LEFT JOIN devices m ON m.patient_id = s.patient_id AND m.serial = s.device
RETURNING batch_id, conflict, identity
)
-- Per batch, not per reading: a count, and the few identities that conflict.
SELECT batch_id, count(*), array_agg(identity) FILTER (WHERE conflict) FROM stored
GROUP BY batch_id
"""

# ...and the reading it conflicts with, stored earlier, is flagged too.
_FLAG_EARLIER_CONFLICTS = """
UPDATE readings r SET conflict = true
FROM reading_identities n
JOIN reading_identities i ON i.instant_key = n.instant_key
WHERE n.identity = ANY(%(identities)s::uuid[]) AND r.identity = i.identity
  AND r.measured_at = i.measured_at AND NOT r.conflict
"""

_HELD = """
INSERT INTO held_records (patient_id, sender, device, source, batch_id, sequence_number,
                          reason, detail, raw_record, raw_context, meter_time, estimated_at,
                          identity, reading)
SELECT * FROM unnest(%(patients)s::uuid[], %(senders)s::text[], %(devices)s::text[],
                     %(sources)s::text[], %(batches)s::uuid[], %(sequences)s::integer[],
                     %(reasons)s::text[], %(details)s::text[], %(raws)s::bytea[],
                     %(contexts)s::bytea[], %(meter_times)s::timestamp[],
                     %(estimates)s::timestamptz[], %(identities)s::uuid[], %(readings)s::jsonb[])
ON CONFLICT (identity) DO NOTHING
RETURNING batch_id
"""

_DEAD_LETTER = """
INSERT INTO dead_letters (topic, sender, payload, reason, patient_id)
VALUES (%(topic)s, %(sender)s, %(payload)s, %(reason)s, %(patient_id)s)
"""

# The patient a bridge was registered to, for bridges not revoked.
_BRIDGE_PATIENTS = """
SELECT id, patient_id FROM bridges WHERE id = ANY(%(ids)s) AND revoked_at IS NULL
"""


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: uuid.UUID
    sender: str
    stored: int
    duplicates: int
    rejected: int
    held: int = 0

    @property
    def bridge_id(self) -> str:
        return self.sender


Conn = psycopg.Connection[tuple[object, ...]]

_staged: weakref.WeakSet[Conn] = weakref.WeakSet()


def place_bridge_batches(
    conn: Conn, batches: Sequence[DecodedBatch]
) -> tuple[list[DecodedBatch], list[DecodedBatch]]:
    """Attach each bridge's batch to the patient its bridge was registered to.

    Batches that already name their patient (an import, an upload) pass through. Returns
    (placed, unplaceable): a batch from a bridge that is not registered, or was revoked,
    belongs to no one and is set aside whole (and confirmed as rejected, so the bridge does
    not send it forever).
    """
    known = [b for b in batches if b.patient_id is not None]
    unknown = [b for b in batches if b.patient_id is None]
    if not unknown:
        return known, []
    ids = sorted({b.sender for b in unknown})
    owners = {str(r[0]): r[1] for r in conn.execute(_BRIDGE_PATIENTS, {"ids": ids}).fetchall()}
    placed: list[DecodedBatch] = known
    unplaceable: list[DecodedBatch] = []
    for b in unknown:
        owner = owners.get(b.sender)
        if owner is None:
            unplaceable.append(b)
        else:
            assert isinstance(owner, uuid.UUID)
            placed.append(_with_patient(b, owner))
    return placed, unplaceable


def _with_patient(batch: DecodedBatch, patient_id: uuid.UUID) -> DecodedBatch:
    return DecodedBatch(
        batch.topic,
        batch.payload,
        batch.sender,
        batch.batch_id,
        batch.meter,
        batch.readings,
        batch.held,
        [Rejected(r.topic, r.sender, r.payload, r.reason, patient_id) for r in batch.rejected],
        patient_id=patient_id,
        claims_device=batch.claims_device,
    )


def unplaceable_letter(batch: DecodedBatch) -> Rejected:
    return Rejected(
        batch.topic,
        batch.sender,
        batch.payload,
        f"bridge {batch.sender!r} is not registered to a patient (or was revoked)",
    )


def write(
    conn: Conn, batches: Sequence[DecodedBatch], rejected: Sequence[Rejected]
) -> list[BatchOutcome]:
    """Store batches, held records and dead letters in one transaction; what happened to
    each distinct batch (a batch delivered twice in one write is counted once).

    A batch without a patient is a bridge's: it is placed with the patient its bridge was
    registered to, in the same transaction; one from a bridge that belongs to no one (never
    registered, or revoked) is set aside whole and reported as rejected.
    """
    stored: Counter[uuid.UUID] = Counter()
    held: Counter[uuid.UUID] = Counter()
    with conn.transaction(), conn.cursor() as cur:
        placed, unplaceable = place_bridge_batches(conn, batches)
        if placed:
            if conn not in _staged:
                cur.execute(_CREATE_STAGING)
            _copy_readings(cur, placed)
            cur.execute(_MERGE, _devices(placed))
            conflicted: list[uuid.UUID] = []
            for batch_id, count, identities in cur.fetchall():
                assert isinstance(batch_id, uuid.UUID) and isinstance(count, int)
                stored[batch_id] += count
                if identities:
                    assert isinstance(identities, list)
                    conflicted += identities
            if conflicted:
                cur.execute(_FLAG_EARLIER_CONFLICTS, {"identities": conflicted})
            held.update(_hold(cur, placed))
        dead = list(rejected) + [r for b in placed for r in b.rejected]
        dead += [unplaceable_letter(b) for b in unplaceable]
        if dead:
            cur.executemany(_DEAD_LETTER, [r.__dict__ for r in dead])
    if placed:
        _staged.add(conn)  # committed: the staging table outlives this transaction
    for b in unplaceable:
        log.warning("batch %s from unregistered bridge %s set aside", b.batch_id, b.sender)
    return _outcomes(placed, stored, held) + [
        BatchOutcome(b.batch_id, b.sender, 0, 0, len(b.readings) + len(b.rejected) + len(b.held))
        for b in _distinct(unplaceable)
    ]


def _distinct(batches: Sequence[DecodedBatch]) -> list[DecodedBatch]:
    seen: set[uuid.UUID] = set()
    out = []
    for b in batches:
        if b.batch_id not in seen:
            seen.add(b.batch_id)
            out.append(b)
    return out


def _devices(batches: Sequence[DecodedBatch]) -> dict[str, list[object]]:
    """The merge's parameters: each (patient, device) of the write once, claimed if any of
    its batches claims it."""
    devices = {}
    for b in batches:
        source = b.readings[0].source_kind.value if b.readings else "meter"
        key = (b.patient_id, b.meter.serial)
        if key not in devices or b.claims_device:
            devices[key] = (b, source)
    rows = list(devices.values())
    return {
        "patients": [b.patient_id for b, _ in rows],
        "serials": [b.meter.serial for b, _ in rows],
        "manufacturers": [b.meter.manufacturer for b, _ in rows],
        "models": [b.meter.model for b, _ in rows],
        "sources": [source for _, source in rows],
        "claims": [b.claims_device for b, _ in rows],
    }


def _copy_readings(
    cur: psycopg.Cursor[tuple[object, ...]], batches: Sequence[DecodedBatch]
) -> None:
    columns = f"{_COLUMN_LIST}, instant_key"
    with cur.copy(f"COPY staging_readings ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_STAGING_TYPES)
        write_row = copy.write_row
        for batch in batches:
            device, sender, batch_id = batch.meter.serial, batch.sender, batch.batch_id
            patient_id = batch.patient_id
            prefixes: dict[SourceKind, str] = {}
            for r in batch.readings:
                source = r.source_kind
                prefix = prefixes.get(source)
                if prefix is None:
                    prefix = prefixes[source] = identity_prefix(patient_id, device, source)
                sequence_number, meter_time = r.sequence_number, r.meter_time
                write_row(
                    (
                        r.measured_at,
                        device,
                        sequence_number,
                        meter_time,
                        r.time_offset_minutes,
                        sender,
                        batch_id,
                        r.value,
                        r.unit.value,
                        r.mg_dl,
                        source.value,
                        r.is_control,
                        r.range_flag,
                        r.sample_type,
                        r.sample_location,
                        r.sensor_status,
                        r.meal,
                        r.carbohydrate_g,
                        r.carbohydrate_meal,
                        r.tester,
                        r.health,
                        r.hba1c_pct,
                        Jsonb(r.context) if r.context is not None else None,
                        r.raw_record,
                        r.raw_context,
                        identity_of(prefix, sequence_number, meter_time, r.value),
                        patient_id,
                        None if sequence_number is not None else instant_of(prefix, meter_time),
                    )
                )


def _hold(
    cur: psycopg.Cursor[tuple[object, ...]], batches: Sequence[DecodedBatch]
) -> Counter[uuid.UUID]:
    rows = [(b, h) for b in batches for h in b.held]
    if not rows:
        return Counter()
    cur.execute(
        _HELD,
        {
            "patients": [b.patient_id for b, _ in rows],
            "senders": [b.sender for b, _ in rows],
            "devices": [b.meter.serial for b, _ in rows],
            "sources": ["meter" for _ in rows],
            "batches": [b.batch_id for b, _ in rows],
            "sequences": [h.sequence_number for _, h in rows],
            "reasons": [h.reason.value for _, h in rows],
            "details": [h.detail for _, h in rows],
            "raws": [h.raw_record for _, h in rows],
            "contexts": [h.raw_context for _, h in rows],
            "meter_times": [h.meter_time for _, h in rows],
            "estimates": [h.estimated_at for _, h in rows],
            "identities": [
                held_identity(b.patient_id, b.meter.serial, h.sequence_number, h.raw_record)
                for b, h in rows
            ],
            "readings": [Jsonb(h.reading) if h.reading is not None else None for _, h in rows],
        },
    )
    return Counter(row[0] for row in cur.fetchall())  # type: ignore[misc]


def _outcomes(
    batches: Sequence[DecodedBatch], stored: Counter[uuid.UUID], held: Counter[uuid.UUID]
) -> list[BatchOutcome]:
    """One outcome per distinct batch id, with its true counts: a batch that arrived twice in
    one write (a re-send racing the original) is confirmed once, not twice its size."""
    out: list[BatchOutcome] = []
    for b in _distinct(batches):
        readings = len({(r.sequence_number, r.meter_time, r.value) for r in b.readings})
        out.append(
            BatchOutcome(
                b.batch_id,
                b.sender,
                stored[b.batch_id],
                readings - stored[b.batch_id],
                len(b.rejected),
                held[b.batch_id],
            )
        )
    return out


def write_isolating_bad_batches(
    conn: Conn, batches: list[DecodedBatch], rejected: list[Rejected]
) -> list[BatchOutcome]:
    """Write everything at once. If the database refuses the data itself (not a lost
    connection: say a text with a NUL byte), write batch by batch and dead-letter the batch
    it refuses, confirming it to the sender as rejected so it is not re-sent forever."""
    try:
        return write(conn, batches, rejected)
    except psycopg.OperationalError:
        raise
    except psycopg.Error as first_error:
        if len(batches) + len(rejected) <= 1 and batches:
            batch = batches[0]
            log.error("database refused batch %s: %s", batch.batch_id, first_error)
            reason = f"database refused the batch: {first_error}".replace("\x00", "")
            write(
                conn,
                [],
                [Rejected(batch.topic, batch.sender, batch.payload, reason, batch.patient_id)],
            )
            count = len(batch.readings) + len(batch.rejected) + len(batch.held)
            return [BatchOutcome(batch.batch_id, batch.sender, 0, 0, count)]
        if not batches:
            raise
    outcomes = write(conn, [], rejected) if rejected else []
    for batch in _distinct(batches):
        outcomes += write_isolating_bad_batches(conn, [batch], [])
    return outcomes
