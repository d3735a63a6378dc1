-- Identity, care teams and consent, bridges, and the append-only audit log.

-- A person who signs in. The role says what kind of account it is; what it may see of a
-- patient is decided by grants, never by the role alone.
CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text NOT NULL,
    display_name  text NOT NULL,
    role          text NOT NULL CHECK (role IN
                    ('patient', 'caregiver', 'nutritionist', 'clinician', 'clinic_admin', 'admin')),
    password_hash text NOT NULL,                 -- argon2id, PHC string
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Sign-in is by e-mail, case-insensitively.
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE organisations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE organisation_members (
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    user_id         uuid NOT NULL REFERENCES users (id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_id, user_id)
);
-- "Which clinics is this user in" is asked on every request under a clinic grant.
CREATE INDEX organisation_members_user ON organisation_members (user_id);

-- A patient account owns at most one patient record; demo and imported patients may have none.
ALTER TABLE patients
    ADD COLUMN user_id uuid UNIQUE REFERENCES users (id),
    ADD COLUMN research_opt_in boolean NOT NULL DEFAULT false,
    -- Research exports name a patient by this, never by id, name or serial.
    ADD COLUMN research_pseudonym uuid NOT NULL DEFAULT gen_random_uuid(),
    -- Whole days (so the time of day stays), drawn once per patient: 30-395 days back.
    ADD COLUMN research_shift_days integer NOT NULL DEFAULT -(30 + floor(random() * 366)::integer);

-- Refresh tokens are random; only their SHA-256 is stored. One family per sign-in: every
-- refresh rotates to a new token of the same family, and presenting a used token again (a
-- stolen copy) revokes the whole family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id),
    family_id   uuid NOT NULL,
    token_hash  text NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Every sign-in attempt; throttling counts recent failures per account and per address.
CREATE TABLE login_attempts (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    email     text NOT NULL,                     -- lower-cased as typed, even if unknown
    address   text NOT NULL,
    succeeded boolean NOT NULL
);
CREATE INDEX login_attempts_email ON login_attempts (email, at DESC);
CREATE INDEX login_attempts_address ON login_attempts (address, at DESC);

-- Consent: a patient lets a user or a whole clinic see some of their data until a date.
-- A clinician's request is a grant in state 'requested' until the patient decides.
CREATE TABLE grants (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id              uuid NOT NULL REFERENCES patients (id),
    grantee_user_id         uuid REFERENCES users (id),
    grantee_organisation_id uuid REFERENCES organisations (id),
    scopes                  text[] NOT NULL
        CHECK (scopes <@ ARRAY['readings', 'trends', 'alerts', 'exports'] AND cardinality(scopes) > 0),
    status                  text NOT NULL CHECK (status IN ('requested', 'active', 'declined', 'revoked')),
    expires_at              timestamptz,                   -- NULL: until revoked
    requested_by            uuid REFERENCES users (id),
    note                    text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    decided_at              timestamptz,
    revoked_at              timestamptz,
    CHECK ((grantee_user_id IS NULL) <> (grantee_organisation_id IS NULL))
);
-- The access check: "grants of this patient in force for this user or these clinics".
CREATE INDEX grants_patient ON grants (patient_id, status);
CREATE INDEX grants_user ON grants (grantee_user_id) WHERE grantee_user_id IS NOT NULL;
CREATE INDEX grants_organisation ON grants (grantee_organisation_id)
    WHERE grantee_organisation_id IS NOT NULL;

-- A bridge registered to a patient's home; its MQTT credentials live in the broker.
CREATE TABLE bridges (
    id         text PRIMARY KEY,                 -- also its MQTT user name
    patient_id uuid NOT NULL REFERENCES patients (id),
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX bridges_patient ON bridges (patient_id);

-- Who looked at which patient's data, when, from where. Rows are only ever added.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_user_id  uuid NOT NULL,
    actor_role     text NOT NULL,
    patient_id     uuid NOT NULL,
    action         text NOT NULL,                -- the route's name, e.g. list_readings
    method         text NOT NULL,
    path           text NOT NULL,
    client_address text,
    request_id     text NOT NULL,
    grant_id       uuid                          -- NULL when the patient looked at their own data
);
-- The patient's access log, newest first.
CREATE INDEX audit_log_patient ON audit_log (patient_id, id DESC);
CREATE INDEX audit_log_request ON audit_log (request_id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
