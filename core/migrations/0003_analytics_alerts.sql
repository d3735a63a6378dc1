-- Analytics and alerts: patients' time-zone history, alert thresholds, stored alerts, their
-- delivery outbox, and what the alerts worker needs to follow new readings exactly once.

-- Which zone was in force when: a day is computed in the zone the patient lived in that day.
-- patients.timezone stays the current zone; the trigger below keeps the two in step.
CREATE TABLE patient_timezones (
    patient_id     uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    effective_from timestamptz NOT NULL,  -- '-infinity' for the zone a patient started with
    timezone       text NOT NULL,
    PRIMARY KEY (patient_id, effective_from)
);

INSERT INTO patient_timezones (patient_id, effective_from, timezone)
SELECT id, '-infinity', timezone FROM patients;

-- A new patient's zone holds for all their past readings; a later change of patients.timezone
-- (without a history row saying since when) holds from the moment of the change.
CREATE FUNCTION record_patient_timezone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO patient_timezones (patient_id, effective_from, timezone)
        VALUES (NEW.id, '-infinity', NEW.timezone) ON CONFLICT DO NOTHING;
    ELSIF NEW.timezone IS DISTINCT FROM (
        SELECT timezone FROM patient_timezones
        WHERE patient_id = NEW.id AND effective_from <= now()
        ORDER BY effective_from DESC LIMIT 1
    ) THEN
        INSERT INTO patient_timezones (patient_id, effective_from, timezone)
        VALUES (NEW.id, now(), NEW.timezone)
        ON CONFLICT (patient_id, effective_from) DO UPDATE SET timezone = EXCLUDED.timezone;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER patients_timezone_history
    AFTER INSERT OR UPDATE OF timezone ON patients
    FOR EACH ROW EXECUTE FUNCTION record_patient_timezone();

-- The transaction that stored each reading. The alerts worker reads the rows of every
-- transaction that finished since its checkpoint (xact < the oldest transaction still
-- running), so a row committed late, by a transaction that started early, is never skipped
-- as it would be behind a sequence number or a received_at high-water mark. Readings stored
-- before this migration keep NULL: they are history, not news.
ALTER TABLE readings ADD COLUMN ingest_xact xid8;
ALTER TABLE readings ALTER COLUMN ingest_xact SET DEFAULT pg_current_xact_id();
-- The worker asks "rows of transactions in [checkpoint, horizon)" every second.
CREATE INDEX readings_ingest_xact ON readings (ingest_xact) WHERE ingest_xact IS NOT NULL;

-- Trends, the AGP and daily summaries read every reading of one patient over weeks to a year
-- (26,000 for 90 days of CGM). Readings of many patients share heap pages, so fetching them
-- from the heap costs about one page read per reading; this index holds every column those
-- queries use, in patient and time order, so PostgreSQL answers them from the index alone
-- (an index-only scan, for pages VACUUM has marked all-visible).
CREATE INDEX readings_patient_series ON readings (patient_id, measured_at)
    INCLUDE (value, mg_dl, unit, sample_type, meal);

-- Wakes the alerts worker when readings commit (NOTIFY is delivered at commit); the worker
-- also polls, so a lost notification only delays it.
CREATE FUNCTION notify_readings_stored() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('readings_stored', '');
    RETURN NULL;
END $$;
CREATE TRIGGER readings_stored_notify
    AFTER INSERT ON readings FOR EACH STATEMENT EXECUTE FUNCTION notify_readings_stored();

CREATE TABLE alert_checkpoints (
    name       text PRIMARY KEY,
    next_xact  xid8 NOT NULL,  -- rows of transactions from this one on are still to be read
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per-patient thresholds, set by their clinician; a patient without a row gets the defaults
-- in ingest/alerts/rules.py (the consensus levels in the unit each reading was measured in).
-- Values are in `unit`, so a clinician's 4.0 mmol/L never drifts through a conversion.
CREATE TABLE alert_thresholds (
    patient_id                 uuid PRIMARY KEY REFERENCES patients (id) ON DELETE CASCADE,
    unit                       text NOT NULL CHECK (unit IN ('mg/dL', 'mmol/L')),
    low                        double precision NOT NULL,
    very_low                   double precision NOT NULL,
    high                       double precision NOT NULL,
    max_hours_without_reading  double precision,  -- NULL: no testing plan to check against
    meter_sync_days            integer NOT NULL,
    time_below_range_pct       double precision NOT NULL,
    set_by                     text NOT NULL,
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK (very_low < low AND low < high)
);

-- When each meter last delivered readings (kept by the alerts worker as it reads them).
CREATE TABLE meter_syncs (
    meter_serial     text PRIMARY KEY,
    patient_id       uuid REFERENCES patients (id) ON DELETE CASCADE,
    last_received_at timestamptz NOT NULL
);

CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    patient_id      uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    kind            text NOT NULL,
    level           smallint NOT NULL DEFAULT 1,
    subject         text NOT NULL DEFAULT '',  -- e.g. the meter serial of meter_not_synced
    audience        text NOT NULL CHECK (audience IN ('patient', 'care_team')),
    -- 'page': raised live and delivered; 'history': found in readings synced long after the
    -- fact, stored for the record and never delivered.
    delivery        text NOT NULL CHECK (delivery IN ('page', 'history')),
    started_at      timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,      -- last reading (or check) that matched
    ended_at        timestamptz,               -- NULL while the episode is open
    extreme_mg_dl   double precision,          -- nadir of a low, peak of a high
    readings        integer NOT NULL DEFAULT 0,
    detail          jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text
);
-- One alert per episode: at most one open paged alert of a kind per patient and subject.
CREATE UNIQUE INDEX alerts_one_open_episode ON alerts (patient_id, kind, subject)
    WHERE ended_at IS NULL AND delivery = 'page';
-- Lists are "this patient's alerts, newest first".
CREATE INDEX alerts_patient ON alerts (patient_id, id DESC);

CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    url         text NOT NULL,
    secret      text NOT NULL,  -- HMAC-SHA256 key, shown once when the endpoint is created
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_patient ON webhook_endpoints (patient_id);

-- The delivery outbox: written in the transaction that raises the alert, emptied by the
-- worker's delivery loop, which retries with backoff until the receiver takes it.
CREATE TABLE alert_deliveries (
    id              bigserial PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel         text NOT NULL CHECK (channel IN ('webhook', 'mqtt')),
    endpoint_id     uuid REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event           text NOT NULL,   -- 'opened' or 'escalated'
    payload         jsonb NOT NULL,  -- frozen at enqueue: every retry signs the same body
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    failed_at       timestamptz,     -- given up (see MAX_DELIVERY_AGE in ingest/alerts)
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- The delivery loop asks for what is due and not finished.
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
