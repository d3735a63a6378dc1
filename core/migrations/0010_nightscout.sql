-- Nightscout-compatible sites (api/nightscout): CGM apps upload to a patient's site with its
-- uploader secret, followers read it with tokens the patient issues. Readings go through the
-- one intake like every other source; what is not a reading (treatments, device status,
-- calibrations) is kept here.

-- A follower token is a grant: scope `readings`, active until the patient revokes it (from
-- the token list or from the grants list alike). It names no user or clinic, only the label
-- the patient gave the token, which is what the patient reads in their grants and access log.
ALTER TABLE grants ADD COLUMN grantee_label text;
ALTER TABLE grants DROP CONSTRAINT grants_check;
ALTER TABLE grants ADD CONSTRAINT grants_one_grantee CHECK (
    num_nonnulls(grantee_user_id, grantee_organisation_id) = 1
    OR (grantee_user_id IS NULL AND grantee_organisation_id IS NULL AND grantee_label IS NOT NULL)
);

-- One site per patient. `public_id` is the opaque, unguessable path segment (/ns/{public_id}/);
-- rotating the site gives it a new one and a new uploader secret, the row (and its tokens)
-- stay. Clients send the secret hashed (SHA-1 hex, or SHA-512 hex): only those are kept.
CREATE TABLE nightscout_sites (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id      uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    public_id       text NOT NULL UNIQUE,
    uploader_sha1   text NOT NULL UNIQUE,
    uploader_sha512 text NOT NULL UNIQUE,
    -- status.json's settings.units, in the patient's unit.
    unit            text NOT NULL DEFAULT 'mg/dL' CHECK (unit IN ('mg/dL', 'mmol/L')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    rotated_at      timestamptz,
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX nightscout_sites_one_per_patient ON nightscout_sites (patient_id)
    WHERE deleted_at IS NULL;

-- Follower tokens: only the SHA-1 of the token is kept (clients send the token itself, in
-- ?token= or the api-secret header, or its SHA-1 in the api-secret header).
CREATE TABLE nightscout_follower_tokens (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    site_id    uuid NOT NULL REFERENCES nightscout_sites (id) ON DELETE CASCADE,
    grant_id   uuid NOT NULL UNIQUE REFERENCES grants (id),
    label      text NOT NULL,
    token_sha1 text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nightscout_follower_tokens_site ON nightscout_follower_tokens (site_id);

-- Refused credentials, per client address: repeated failures are slowed as sign-ins are.
CREATE TABLE nightscout_auth_failures (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    address text NOT NULL
);
CREATE INDEX nightscout_auth_failures_address ON nightscout_auth_failures (address, at DESC);

-- Treatments (carbs, insulin, notes, BG checks) as the app sent them, one per Nightscout
-- identity: the client's _id, else its identifier, else (created_at, eventType), as
-- Nightscout's own upsert. A second upload of the same treatment replaces it.
CREATE TABLE nightscout_treatments (
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    ns_id       text NOT NULL,               -- 24 hex digits, the document's _id
    created_at  timestamptz NOT NULL,
    event_type  text NOT NULL DEFAULT '',
    carbs       double precision,            -- grams
    insulin     double precision,            -- units
    document    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, ns_id)
);
-- Followers ask for the newest treatments of one patient.
CREATE INDEX nightscout_treatments_time ON nightscout_treatments (patient_id, created_at DESC);

-- Meals and insulin doses, whatever source recorded them: the nutrition page pairs readings
-- around them. Today only Nightscout treatments carry them.
CREATE VIEW meal_events AS
SELECT patient_id, created_at AS at, carbs AS carbohydrate_g, insulin AS insulin_units,
       event_type AS label, 'nightscout'::text AS source
FROM nightscout_treatments
WHERE coalesce(carbs, 0) > 0 OR coalesce(insulin, 0) > 0;

-- Device status documents (uploader battery, pump), newest first for followers.
CREATE TABLE nightscout_devicestatus (
    id          bigserial PRIMARY KEY,
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    device      text,
    document    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX nightscout_devicestatus_time ON nightscout_devicestatus (patient_id, created_at DESC);

-- Calibrations (`cal` entries: slope, intercept, scale of a sensor's raw signal) are not
-- glucose readings: kept here beside the readings, once per device and instant, and served
-- back as `cal` entries.
CREATE TABLE nightscout_calibrations (
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    device      text NOT NULL,
    at          timestamptz NOT NULL,
    slope       double precision,
    intercept   double precision,
    scale       double precision,
    document    jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, device, at)
);
