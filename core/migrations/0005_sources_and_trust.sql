-- Sources, devices and trust (DESIGN.md, "Sources and one intake" and "Trust").
--
-- Every reading belongs to the patient whose bridge (or import, upload, FHIR client)
-- delivered it, never to a patient a payload names; it carries its source kind and its
-- device, and its identity includes both, so two devices of one patient, or a CGM and a
-- meter, never collide. Whether a reading is a control-solution test is decided once, at
-- decode, and stored; whether it counts is one view, `counted_readings`, that every query of
-- patient data reads.

-- The device a reading came from: a meter's serial, a CGM uploader's device name, an
-- imported file. And who delivered it: a bridge id, or the intake that took it in.
ALTER TABLE readings RENAME COLUMN meter_serial TO device;
ALTER TABLE readings RENAME COLUMN bridge_id TO sender;
ALTER TABLE readings ALTER COLUMN sequence_number DROP NOT NULL;  -- uploads have none

ALTER TABLE readings
    ADD COLUMN source text NOT NULL DEFAULT 'meter',
    -- GLS type 10 or location 4; stored, never counted as a patient reading.
    ADD COLUMN control boolean NOT NULL DEFAULT false,
    -- HI / LO: outside the meter's measuring range; the value is the meter's limit.
    ADD COLUMN range_flag text,
    -- A meter the bridge's patient has not claimed yet: held for that patient only, counted
    -- nowhere until they claim it.
    ADD COLUMN awaiting_claim boolean NOT NULL DEFAULT false,
    -- A second value for an instant of a device that has no sequence numbers (an upload
    -- corrected after the fact): both are kept, this one flagged.
    ADD COLUMN conflict boolean NOT NULL DEFAULT false,
    ADD COLUMN identity uuid,
    ADD COLUMN raw_record bytea,
    ADD COLUMN raw_context bytea,
    ADD COLUMN carbohydrate_meal text,
    ADD COLUMN tester text,
    ADD COLUMN health text,
    ADD COLUMN hba1c_pct real;
ALTER TABLE readings
    ADD CONSTRAINT readings_source CHECK (source IN ('cgm', 'meter', 'lab')),
    ADD CONSTRAINT readings_range_flag CHECK (range_flag IN ('above_range', 'below_range'));

UPDATE readings SET source = 'cgm' WHERE sample_type = 'interstitial_fluid';
UPDATE readings SET control = true
WHERE sample_type = 'control_solution' OR sample_location = 'control_solution';
-- Readings held for a meter no one had claimed now belong to the patient of the bridge
-- that delivered them, awaiting that patient's claim.
UPDATE readings r SET patient_id = b.patient_id, awaiting_claim = true
FROM bridges b WHERE r.patient_id IS NULL AND b.id = r.sender;

-- A reading's identity, as core/intake computes it (core.intake.identity):
-- md5 of patient | device | source | sequence number | meter time in µs | value in
-- thousandths (the value only for devices without sequence numbers).
CREATE FUNCTION reading_identity(
    patient uuid, device text, source text, sequence_number integer, meter_time timestamp,
    value double precision
) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT md5(concat_ws('|',
        coalesce(patient::text, ''),
        device,
        source,
        coalesce(sequence_number::text, ''),
        (extract(epoch FROM meter_time) * 1000000)::bigint::text,
        CASE WHEN sequence_number IS NULL THEN round(value * 1000)::bigint::text ELSE '' END
    ))::uuid
$$;
UPDATE readings
SET identity = reading_identity(patient_id, device, source, sequence_number, meter_time, value);
ALTER TABLE readings ALTER COLUMN identity SET NOT NULL;

-- Identities live in their own table: a unique index on the hypertable would have to include
-- measured_at, which the bridge derives from a clock correction that may differ between two
-- syncs of the same record. One narrow key per reading keeps the check cheap.
DROP TABLE reading_identities;
CREATE TABLE reading_identities (
    identity    uuid PRIMARY KEY,
    -- For devices without sequence numbers: (patient, device, source, meter time), so a
    -- second value at the same instant is found and flagged.
    instant_key uuid,
    measured_at timestamptz NOT NULL
);
CREATE INDEX reading_identities_instant ON reading_identities (instant_key)
    WHERE instant_key IS NOT NULL;
INSERT INTO reading_identities (identity, measured_at)
SELECT DISTINCT ON (identity) identity, measured_at FROM readings ORDER BY identity, measured_at;

-- Meters (and other devices) are claimed per patient: two patients of one household may
-- both claim a shared meter, and a claim attaches only readings that patient's own bridges
-- delivered. A row without claimed_at is a device a patient's bridge has seen, unclaimed.
ALTER TABLE meters RENAME TO meters_before_0005;
CREATE TABLE meters (
    patient_id   uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    serial       text NOT NULL,
    manufacturer text,
    model        text,
    source       text NOT NULL DEFAULT 'meter' CHECK (source IN ('cgm', 'meter', 'lab')),
    first_seen   timestamptz NOT NULL DEFAULT now(),
    claimed_at   timestamptz,
    PRIMARY KEY (patient_id, serial)
);
INSERT INTO meters (patient_id, serial, manufacturer, model, first_seen, claimed_at)
SELECT patient_id, serial, manufacturer, model, first_seen, first_seen
FROM meters_before_0005 WHERE patient_id IS NOT NULL;
INSERT INTO meters (patient_id, serial, first_seen)
SELECT DISTINCT r.patient_id, r.device, min(r.received_at)
FROM readings r WHERE r.awaiting_claim GROUP BY r.patient_id, r.device
ON CONFLICT DO NOTHING;
DROP TABLE meters_before_0005;

-- When each device of a patient last delivered readings (alerts: "meter not synced").
ALTER TABLE meter_syncs RENAME COLUMN meter_serial TO device;
DELETE FROM meter_syncs WHERE patient_id IS NULL;
ALTER TABLE meter_syncs DROP CONSTRAINT meter_syncs_pkey;
ALTER TABLE meter_syncs ALTER COLUMN patient_id SET NOT NULL;
ALTER TABLE meter_syncs ADD PRIMARY KEY (patient_id, device);

-- Records a device holds that could not become readings (a clock never set, NaN, NRes, a
-- malformed record), with their raw bytes and reason: the patient and an admin see them,
-- and the patient can confirm an estimated time or correct it.
CREATE TABLE held_records (
    id              bigserial PRIMARY KEY,
    patient_id      uuid REFERENCES patients (id) ON DELETE CASCADE,
    sender          text NOT NULL,
    device          text NOT NULL,
    source          text NOT NULL DEFAULT 'meter',
    batch_id        uuid,
    sequence_number integer,
    reason          text NOT NULL,  -- core.vocabulary.HeldReason
    detail          text NOT NULL,
    raw_record      bytea NOT NULL,
    raw_context     bytea,
    meter_time      timestamp,
    estimated_at    timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    -- Re-sent records are kept once: md5 of patient | device | sequence number | raw bytes.
    identity        uuid NOT NULL UNIQUE,
    resolved_at     timestamptz,
    resolution      text CHECK (resolution IN ('confirmed', 'corrected', 'dismissed')),
    resolved_by     uuid REFERENCES users (id)
);
CREATE INDEX held_records_patient ON held_records (patient_id, id DESC);

-- A dead letter names the patient when the sender could be placed (the patient may see
-- what of theirs was set aside).
ALTER TABLE dead_letters ADD COLUMN patient_id uuid REFERENCES patients (id) ON DELETE CASCADE;
ALTER TABLE dead_letters RENAME COLUMN bridge_id TO sender;
CREATE INDEX dead_letters_patient ON dead_letters (patient_id, id DESC)
    WHERE patient_id IS NOT NULL;

-- What counts: a patient's own readings, claimed, not control solution. Every metric, page,
-- alert and export reads this view, never `readings` with filters of its own.
CREATE VIEW counted_readings AS
SELECT * FROM readings
WHERE patient_id IS NOT NULL AND NOT control AND NOT awaiting_claim;

-- Trends, the AGP and daily summaries read one patient's readings of one source over weeks
-- to a year (26,000 for 90 days of CGM); this index holds every column they use, in
-- patient, source and time order, so PostgreSQL answers from the index alone.
DROP INDEX readings_patient_series;
CREATE INDEX readings_counted_series ON readings (patient_id, source, measured_at)
    INCLUDE (value, mg_dl, unit, meal, range_flag)
    WHERE patient_id IS NOT NULL AND NOT control AND NOT awaiting_claim;
-- Claiming a meter attaches that patient's readings of it.
DROP INDEX readings_meter;
CREATE INDEX readings_patient_device ON readings (patient_id, device, measured_at DESC);
