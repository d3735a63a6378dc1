-- Patients, their meters, and the readings hypertable.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE patients (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    display_name text NOT NULL,
    -- IANA zone: daily summaries are the patient's own days, and patients travel.
    timezone     text NOT NULL DEFAULT 'UTC',
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE meters (
    serial       text PRIMARY KEY,
    manufacturer text,
    model        text,
    -- NULL until a patient claims the meter; its readings are held meanwhile.
    patient_id   uuid REFERENCES patients (id),
    first_seen   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE readings (
    measured_at         timestamptz NOT NULL,       -- corrected instant, UTC
    meter_serial        text NOT NULL,
    sequence_number     integer NOT NULL,
    meter_time          timestamp NOT NULL,          -- raw base time from the meter, no zone
    time_offset_minutes integer,                     -- raw time offset, when the meter sent one
    patient_id          uuid,                        -- NULL: held until the meter is claimed
    bridge_id           text NOT NULL,
    batch_id            uuid NOT NULL,
    value               double precision NOT NULL,  -- as measured, in `unit`
    unit                text NOT NULL CHECK (unit IN ('mg/dL', 'mmol/L')),
    mg_dl               double precision NOT NULL,
    sample_type         text,
    sample_location     text,
    sensor_status       text[] NOT NULL DEFAULT '{}',
    meal                text,
    carbohydrate_g      real,
    context             jsonb,
    received_at         timestamptz NOT NULL DEFAULT now()
);
-- Seven-day chunks: a patient's 14- and 90-day views touch a handful of chunks.
SELECT create_hypertable('readings', 'measured_at', chunk_time_interval => interval '7 days');
-- Every patient view is "this patient, this period".
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at DESC);
-- Claiming a meter attaches its held readings.
CREATE INDEX readings_meter ON readings (meter_serial, measured_at DESC);

-- A reading's identity is (meter serial, sequence number, raw meter time). A unique index on
-- the hypertable would have to include measured_at, which the bridge derives from a clock
-- correction that may differ between two syncs of the same record, so identities live here.
CREATE TABLE reading_identities (
    meter_serial    text NOT NULL,
    sequence_number integer NOT NULL,
    meter_time      timestamp NOT NULL,
    measured_at     timestamptz NOT NULL,
    PRIMARY KEY (meter_serial, sequence_number, meter_time)
);

-- What could not be stored, kept with the reason for someone to look at.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    bridge_id   text,
    payload     bytea NOT NULL,
    reason      text NOT NULL
);
CREATE INDEX dead_letters_received ON dead_letters (received_at DESC);
