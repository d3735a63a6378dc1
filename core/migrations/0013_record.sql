-- The patient owns the record: annotate a reading without destroying it, take everything in
-- one archive, erase the record (issue 18).

-- A patient's (or their clinician's) word on a reading: not theirs, a control test the meter
-- did not flag, a wrong clock (with the instant it really happened), or a note. The reading
-- stays as stored; an annotation in force (not undone) changes what counts.
CREATE TABLE reading_annotations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id   uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    identity     uuid NOT NULL,                -- readings.identity
    -- The reading's stored instant: the hypertable is searched in one chunk, not all.
    reading_at   timestamptz NOT NULL,
    kind         text NOT NULL
        CHECK (kind IN ('not_mine', 'control_solution', 'wrong_time', 'note')),
    corrected_at timestamptz,                  -- wrong_time: when the reading really happened
    note         text,                         -- why, in the annotator's words
    bulk_id      uuid,                         -- annotations made by one bulk exclusion
    created_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    undone_at    timestamptz,
    undone_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    CHECK ((kind = 'wrong_time') = (corrected_at IS NOT NULL))
);
CREATE INDEX reading_annotations_patient ON reading_annotations (patient_id, created_at DESC);
-- One mark of each kind in force per reading (notes may be many); the view's anti-join.
CREATE UNIQUE INDEX reading_annotations_in_force ON reading_annotations (identity, kind)
    WHERE undone_at IS NULL AND kind <> 'note';

-- What the marks in force say of each marked reading.
CREATE VIEW reading_marks AS
SELECT patient_id, identity, reading_at,
       bool_or(kind IN ('not_mine', 'control_solution')) AS excluded,
       max(corrected_at) AS corrected_at
FROM reading_annotations
WHERE undone_at IS NULL AND kind <> 'note'
GROUP BY patient_id, identity, reading_at;

-- What counts (migration 0005) now also honours the patient's marks: an excluded reading
-- counts nowhere, a corrected one counts at its corrected instant. Two branches so a query
-- "this patient, this period" still reads the unmarked readings from the series index (the
-- time predicate reaches `r.measured_at`); the marked ones are few and found from the marks.
DROP VIEW counted_readings;
CREATE VIEW counted_readings AS
SELECT r.* FROM readings r
WHERE r.patient_id IS NOT NULL AND NOT r.control AND NOT r.awaiting_claim
  AND NOT EXISTS (
      SELECT 1 FROM reading_annotations a
      WHERE a.identity = r.identity AND a.undone_at IS NULL AND a.kind <> 'note')
UNION ALL
SELECT m.corrected_at AS measured_at, r.device, r.sequence_number, r.meter_time,
       r.time_offset_minutes, r.patient_id, r.sender, r.batch_id, r.value, r.unit, r.mg_dl,
       r.sample_type, r.sample_location, r.sensor_status, r.meal, r.carbohydrate_g, r.context,
       r.received_at, r.ingest_xact, r.source, r.control, r.range_flag, r.awaiting_claim,
       r.conflict, r.identity, r.raw_record, r.raw_context, r.carbohydrate_meal, r.tester,
       r.health, r.hba1c_pct
FROM reading_marks m
JOIN readings r
  ON r.patient_id = m.patient_id AND r.measured_at = m.reading_at AND r.identity = m.identity
WHERE NOT m.excluded AND m.corrected_at IS NOT NULL
  AND NOT r.control AND NOT r.awaiting_claim;

-- Alerts as they stand after the patient's marks: an alert on readings (it has an extreme)
-- whose every reading in its episode is excluded is withdrawn from the history, the live
-- stream and the pages (the archive keeps it).
CREATE VIEW counted_alerts AS
SELECT a.* FROM alerts a
WHERE a.extreme_mg_dl IS NULL
   OR NOT EXISTS (
       SELECT 1 FROM reading_marks m
       WHERE m.patient_id = a.patient_id AND m.excluded
         AND m.reading_at BETWEEN a.started_at AND a.last_at)
   OR EXISTS (
       SELECT 1 FROM counted_readings r
       WHERE r.patient_id = a.patient_id
         AND r.measured_at BETWEEN a.started_at AND a.last_at);

-- The series index now carries the identity too, so the anti-join above is answered from
-- the index alone.
DROP INDEX readings_counted_series;
CREATE INDEX readings_counted_series ON readings (patient_id, source, measured_at)
    INCLUDE (value, mg_dl, unit, meal, range_flag, identity)
    WHERE patient_id IS NOT NULL AND NOT control AND NOT awaiting_claim;

-- Research consent as it changed over time (the patient's archive holds it).
CREATE TABLE research_consent_history (
    id         bigserial PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    opted_in   boolean NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    changed_by uuid REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX research_consent_history_patient ON research_consent_history (patient_id, id);
INSERT INTO research_consent_history (patient_id, opted_in, changed_at)
SELECT id, true, created_at FROM patients WHERE research_opt_in;

-- A patient's archive, built in the background: the row is the job (a restarted API picks
-- up what was queued or half built), and holds the finished zip until it expires.
CREATE TABLE record_archives (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id   uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    status       text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'building', 'ready', 'failed', 'expired')),
    files_done   integer NOT NULL DEFAULT 0,
    files_total  integer,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    expires_at   timestamptz,
    error        text,
    content      bytea
);
CREATE INDEX record_archives_patient ON record_archives (patient_id, created_at DESC);
CREATE INDEX record_archives_pending ON record_archives (created_at)
    WHERE status IN ('queued', 'building');

-- An erasure: the job while it runs (a restarted API resumes it at `step`), then the one
-- record the operator keeps that it happened, with no health data and no personal details:
-- ids only, which name no one once the patient and user rows are gone. Kept until
-- `keep_until` (GLUCOBRIDGE_ERASURE_RETENTION_DAYS).
CREATE TABLE erasures (
    patient_id   uuid PRIMARY KEY,             -- no foreign key: the patient row goes
    user_id      uuid NOT NULL,                -- the account erased with it
    requested_at timestamptz NOT NULL DEFAULT now(),
    request_id   text NOT NULL,
    step         text NOT NULL DEFAULT 'revoke',
    finished_at  timestamptz,
    keep_until   timestamptz NOT NULL
);

-- The access log only grows, except that an erasure removes the erased patient's rows: the
-- erasing transaction names that patient in `glucobridge.erasing`.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND OLD.patient_id::text = current_setting('glucobridge.erasing', true) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
