"""The alerts worker's SQL: new readings since the checkpoint, episodes as alert rows, and the
delivery outbox written in the same transaction as the alert it delivers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from core.units import MG_DL_PER_MMOL_L, Unit
from core.vocabulary import RangeFlag
from ingest.alerts.rules import Episode, Kind, Reading, Thresholds

Conn = psycopg.Connection[tuple[Any, ...]]
ALERT_SCHEMA = "glucobridge.alert/1"
CHECKPOINT = "readings"

# Readings of every transaction that finished since the checkpoint: xact below the oldest
# transaction still running (the snapshot's xmin) means finished, committed or not, so
# nothing committed later can appear below the new checkpoint. One statement, one snapshot.
_NEW_READINGS = """
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS upto)
SELECT horizon.upto::text, r.patient_id, r.measured_at, r.received_at, r.value, r.unit,
       r.mg_dl, r.sensor_status, r.device, r.range_flag
FROM horizon
LEFT JOIN counted_readings r
  ON r.ingest_xact >= %(since)s::xid8 AND r.ingest_xact < horizon.upto
ORDER BY r.patient_id, r.measured_at
"""


def lock_checkpoint(conn: Conn) -> str:
    """The checkpoint, locked for this transaction (one evaluator at a time); created at the
    current horizon the first time, so a new worker does not page the whole history."""
    conn.execute(
        "INSERT INTO alert_checkpoints (name, next_xact)"
        " VALUES (%s, pg_snapshot_xmin(pg_current_snapshot())) ON CONFLICT DO NOTHING",
        (CHECKPOINT,),
    )
    row = conn.execute(
        "SELECT next_xact::text FROM alert_checkpoints WHERE name = %s FOR UPDATE", (CHECKPOINT,)
    ).fetchone()
    assert row is not None
    return str(row[0])


def save_checkpoint(conn: Conn, upto: str) -> None:
    conn.execute(
        "UPDATE alert_checkpoints SET next_xact = %s::xid8, updated_at = now() WHERE name = %s",
        (upto, CHECKPOINT),
    )


def new_readings(conn: Conn, since: str) -> tuple[str, dict[uuid.UUID, list[Reading]]]:
    rows = conn.execute(_NEW_READINGS, {"since": since}).fetchall()
    upto = str(rows[0][0])
    by_patient: dict[uuid.UUID, list[Reading]] = {}
    for _, patient, measured, received, value, unit, mg_dl, status, serial, flag in rows:
        if patient is None:
            continue
        range_flag = RangeFlag(flag) if flag is not None else None
        by_patient.setdefault(patient, []).append(
            Reading(measured, received, value, Unit(unit), mg_dl, tuple(status), serial, range_flag)
        )
    return upto, by_patient


def thresholds(conn: Conn, patient: uuid.UUID) -> Thresholds:
    row = conn.execute(
        "SELECT unit, low, very_low, high, max_hours_without_reading, meter_sync_days,"
        " time_below_range_pct FROM alert_thresholds WHERE patient_id = %s",
        (patient,),
    ).fetchone()
    if row is None:
        return Thresholds()
    return Thresholds(Unit(row[0]), *row[1:])


def open_episode(conn: Conn, patient: uuid.UUID, kind: Kind, subject: str = "") -> Episode | None:
    row = conn.execute(
        "SELECT id, level, started_at, last_at, extreme_mg_dl, readings FROM alerts"
        " WHERE patient_id = %s AND kind = %s AND subject = %s"
        " AND ended_at IS NULL AND delivery = 'page'",
        (patient, kind.value, subject),
    ).fetchone()
    if row is None:
        return None
    alert_id, level, started, last, extreme, readings = row
    return Episode(kind, level, started, last, extreme or 0.0, readings, alert_id)


@dataclass(frozen=True)
class NewAlert:
    patient_id: uuid.UUID
    kind: Kind
    level: int
    started_at: datetime
    last_at: datetime
    audience: str = "patient"
    delivery: str = "page"
    subject: str = ""
    extreme_mg_dl: float | None = None
    readings: int = 0
    ended_at: datetime | None = None
    detail: dict[str, Any] | None = None


def insert_alert(conn: Conn, alert: NewAlert) -> int:
    row = conn.execute(
        "INSERT INTO alerts (patient_id, kind, level, subject, audience, delivery, started_at,"
        " last_at, ended_at, extreme_mg_dl, readings, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            alert.patient_id,
            alert.kind.value,
            alert.level,
            alert.subject,
            alert.audience,
            alert.delivery,
            alert.started_at,
            alert.last_at,
            alert.ended_at,
            alert.extreme_mg_dl,
            alert.readings,
            Jsonb(alert.detail or {}),
        ),
    ).fetchone()
    assert row is not None
    alert_id = int(row[0])
    if alert.delivery == "page":
        enqueue(conn, alert_id, "opened")
    return alert_id


def update_episode(conn: Conn, episode: Episode) -> None:
    conn.execute(
        "UPDATE alerts SET level = %s, last_at = %s, extreme_mg_dl = %s, readings = %s"
        " WHERE id = %s",
        (episode.level, episode.last_at, episode.extreme_mg_dl, episode.readings, episode.alert_id),
    )


def close_alert(conn: Conn, alert_id: int, ended_at: datetime) -> None:
    conn.execute("UPDATE alerts SET ended_at = %s WHERE id = %s", (ended_at, alert_id))


def close_open(
    conn: Conn, patient: uuid.UUID, kind: Kind, ended_at: datetime, subject: str = ""
) -> None:
    conn.execute(
        "UPDATE alerts SET ended_at = %s WHERE patient_id = %s AND kind = %s AND subject = %s"
        " AND ended_at IS NULL AND delivery = 'page'",
        (ended_at, patient, kind.value, subject),
    )


_ALERT_JSON = """
SELECT json_build_object(
    'schema', %(schema)s::text, 'event', %(event)s::text, 'alert_id', id, 'patient_id', patient_id,
    'kind', kind, 'level', level, 'subject', subject, 'audience', audience,
    'started_at', started_at, 'last_at', last_at, 'ended_at', ended_at,
    'extreme_mg_dl', extreme_mg_dl,
    'extreme_mmol_l', round((extreme_mg_dl / %(factor)s::float8)::numeric, 1),
    'readings', readings, 'detail', detail)::jsonb, patient_id, audience
FROM alerts WHERE id = %(id)s
"""


def enqueue(conn: Conn, alert_id: int, event: str) -> None:
    """Outbox rows for every channel of the alert's patient, in the caller's transaction."""
    row = conn.execute(
        _ALERT_JSON,
        {"schema": ALERT_SCHEMA, "event": event, "id": alert_id, "factor": MG_DL_PER_MMOL_L},
    ).fetchone()
    assert row is not None
    payload, patient, audience = row
    conn.execute(
        "INSERT INTO alert_deliveries (alert_id, channel, endpoint_id, event, payload)"
        " SELECT %s, 'webhook', id, %s, %s FROM webhook_endpoints WHERE patient_id = %s",
        (alert_id, event, Jsonb(payload), patient),
    )
    if audience == "patient":  # home devices show the patient's own alerts
        conn.execute(
            "INSERT INTO alert_deliveries (alert_id, channel, event, payload)"
            " VALUES (%s, 'mqtt', %s, %s)",
            (alert_id, event, Jsonb(payload)),
        )


def record_syncs(conn: Conn, patient: uuid.UUID, readings: Iterable[Reading]) -> list[str]:
    """Remember when each meter last delivered; returns the serials seen."""
    latest: dict[str, datetime] = {}
    for r in readings:
        if r.device not in latest or r.received_at > latest[r.device]:
            latest[r.device] = r.received_at
    for serial, at in latest.items():
        conn.execute(
            "INSERT INTO meter_syncs (device, patient_id, last_received_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (patient_id, device) DO UPDATE SET"
            " last_received_at = greatest(meter_syncs.last_received_at, EXCLUDED.last_received_at)",
            (serial, patient, at),
        )
    return list(latest)
