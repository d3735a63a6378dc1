"""Evaluation in one transaction each: new readings through the reading rules, and the
clock-driven rules (no readings, meter not synced, time below range)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from core.metrics import THRESHOLDS
from core.units import MG_DL_PER_MMOL_L, Unit
from ingest.alerts import store
from ingest.alerts.rules import (
    MIN_READINGS_FOR_TIME_BELOW_RANGE,
    READING_KINDS,
    TIME_BELOW_RANGE_WINDOW,
    Event,
    Kind,
    Reading,
    advance,
    past_episodes,
)
from ingest.alerts.store import Conn, NewAlert

log = logging.getLogger("glucobridge.alerts")


def evaluate_new_readings(conn: Conn, late_after: timedelta) -> int:
    """Read what committed since the checkpoint, apply the rules, move the checkpoint; one
    transaction, so a crash repeats the whole step and never half of it. Returns the number
    of readings evaluated."""
    with conn.transaction():
        since = store.lock_checkpoint(conn)
        upto, by_patient = store.new_readings(conn, since)
        for patient, readings in by_patient.items():
            _patient_readings(conn, patient, readings, late_after)
        store.save_checkpoint(conn, upto)
    return sum(len(r) for r in by_patient.values())


def _patient_readings(
    conn: Conn, patient: uuid.UUID, readings: list[Reading], late_after: timedelta
) -> None:
    thresholds = store.thresholds(conn, patient)
    live = [r for r in readings if r.received_at - r.measured_at <= late_after]
    late = [r for r in readings if r.received_at - r.measured_at > late_after]
    for kind in READING_KINDS:
        episode = store.open_episode(conn, patient, kind)
        alert_id = episode.alert_id if episode else None
        _, changes = advance(kind, episode, live, thresholds)
        for change in changes:
            ep = change.episode
            if change.event is Event.OPENED:
                alert_id = store.insert_alert(
                    conn,
                    NewAlert(
                        patient,
                        kind,
                        ep.level,
                        ep.started_at,
                        ep.last_at,
                        extreme_mg_dl=ep.extreme_mg_dl,
                        readings=ep.readings,
                    ),
                )
                log.info("alert opened: patient=%s kind=%s id=%d", patient, kind, alert_id)
            elif change.event is Event.CLOSED:
                assert alert_id is not None
                store.close_alert(conn, alert_id, ep.last_at)
                alert_id = None
            else:
                assert alert_id is not None
                store.update_episode(conn, replace(ep, alert_id=alert_id))
                if change.event is Event.ESCALATED:
                    store.enqueue(conn, alert_id, "escalated")
        for ep in past_episodes(kind, late, thresholds):
            store.insert_alert(
                conn,
                NewAlert(
                    patient,
                    kind,
                    ep.level,
                    ep.started_at,
                    ep.last_at,
                    delivery="history",
                    extreme_mg_dl=ep.extreme_mg_dl,
                    readings=ep.readings,
                    ended_at=ep.last_at,
                ),
            )
    if live:
        store.close_open(conn, patient, Kind.NO_READINGS, live[0].measured_at)
    for serial in store.record_syncs(conn, patient, readings):
        store.close_open(
            conn, patient, Kind.METER_NOT_SYNCED, readings[-1].received_at, subject=serial
        )


_SILENT_PATIENTS = """
SELECT t.patient_id, t.max_hours_without_reading, last.measured_at
FROM alert_thresholds t
CROSS JOIN LATERAL (
    SELECT measured_at FROM counted_readings r
    WHERE r.patient_id = t.patient_id
    ORDER BY measured_at DESC LIMIT 1
) last
WHERE t.max_hours_without_reading IS NOT NULL
  AND last.measured_at < %(now)s - make_interval(secs => t.max_hours_without_reading * 3600)
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.patient_id = t.patient_id
                  AND a.kind = 'no_readings' AND a.ended_at IS NULL AND a.delivery = 'page')
"""

_UNSYNCED_METERS = """
SELECT s.patient_id, s.device, s.last_received_at
FROM meter_syncs s LEFT JOIN alert_thresholds t USING (patient_id)
WHERE s.last_received_at
      < %(now)s - make_interval(days => coalesce(t.meter_sync_days, %(default_days)s))
  AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.patient_id = s.patient_id
                  AND a.kind = 'meter_not_synced' AND a.subject = s.device
                  AND a.ended_at IS NULL AND a.delivery = 'page')
"""

# Below the patient's low threshold in the unit they set it in, else the consensus level in
# the unit of the reading (constants passed in: they are defined once, in core).
_TIME_BELOW_RANGE = """
SELECT r.patient_id, count(*) AS n,
       count(*) FILTER (WHERE CASE
           WHEN t.unit IS NULL THEN r.value < CASE r.unit WHEN 'mmol/L' THEN %(low_mmol)s
                                                         ELSE %(low_mg)s END
           WHEN t.unit = r.unit THEN r.value < t.low
           WHEN t.unit = 'mmol/L' THEN r.mg_dl < t.low * %(factor)s
           ELSE r.mg_dl < t.low END) AS below,
       coalesce(max(t.time_below_range_pct), %(default_pct)s) AS limit_pct
FROM counted_readings r LEFT JOIN alert_thresholds t USING (patient_id)
WHERE r.measured_at >= %(since)s AND r.measured_at <= %(now)s
GROUP BY r.patient_id
"""


def run_periodic(conn: Conn, now: datetime, default_sync_days: int, default_tbr: float) -> None:
    with conn.transaction():
        for patient, hours, last in conn.execute(_SILENT_PATIENTS, {"now": now}).fetchall():
            started = last + timedelta(hours=hours)
            store.insert_alert(
                conn,
                NewAlert(patient, Kind.NO_READINGS, 1, started, now, detail={"hours": hours}),
            )
        for patient, serial, last in conn.execute(
            _UNSYNCED_METERS, {"now": now, "default_days": default_sync_days}
        ).fetchall():
            store.insert_alert(
                conn,
                NewAlert(
                    patient,
                    Kind.METER_NOT_SYNCED,
                    1,
                    last,
                    now,
                    subject=serial,
                    detail={"last_sync": last.isoformat()},
                ),
            )
        params = {
            "since": now - TIME_BELOW_RANGE_WINDOW,
            "now": now,
            "low_mg": THRESHOLDS[Unit.MG_DL].low_below,
            "low_mmol": THRESHOLDS[Unit.MMOL_L].low_below,
            "factor": MG_DL_PER_MMOL_L,
            "default_pct": default_tbr,
        }
        for patient, n, below, limit in conn.execute(_TIME_BELOW_RANGE, params).fetchall():
            pct = 100.0 * below / n
            episode = store.open_episode(conn, patient, Kind.TIME_BELOW_RANGE)
            if n >= MIN_READINGS_FOR_TIME_BELOW_RANGE and pct > limit and episode is None:
                store.insert_alert(
                    conn,
                    NewAlert(
                        patient,
                        Kind.TIME_BELOW_RANGE,
                        1,
                        now,
                        now,
                        audience="care_team",
                        readings=n,
                        detail={"pct_below": pct, "limit_pct": limit, "days": 14},
                    ),
                )
            elif episode is not None and episode.alert_id is not None and pct <= limit:
                store.close_alert(conn, episode.alert_id, now)
