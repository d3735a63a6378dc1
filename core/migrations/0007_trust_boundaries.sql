-- Roles that match the clinic, and home displays with broker users of their own.

-- A grant may include `care_plan`: a clinician holding it sets the patient's alert thresholds.
ALTER TABLE grants DROP CONSTRAINT grants_scopes_check;
ALTER TABLE grants ADD CONSTRAINT grants_scopes_check
    CHECK (scopes <@ ARRAY['readings', 'trends', 'alerts', 'exports', 'care_plan']
           AND cardinality(scopes) > 0);

-- Whom a clinic grant reaches: 'members', the clinicians and nutritionists who were members
-- when the grant came into force (recorded in grant_members), or 'clinic', everyone in the
-- clinic, now and later. A grant to a person ignores it.
ALTER TABLE grants
    ADD COLUMN reach text NOT NULL DEFAULT 'members' CHECK (reach IN ('members', 'clinic'));

CREATE TABLE grant_members (
    grant_id uuid NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (grant_id, user_id)
);

-- The members a clinic grant reaches are recorded when it comes into force (made active, or
-- an access request approved), whoever writes the row: the API, the demo, a test.
CREATE FUNCTION record_grant_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'active' AND NEW.grantee_organisation_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.status <> 'active') THEN
        INSERT INTO grant_members (grant_id, user_id)
        SELECT NEW.id, m.user_id
        FROM organisation_members m JOIN users u ON u.id = m.user_id
        WHERE m.organisation_id = NEW.grantee_organisation_id
          AND u.role IN ('clinician', 'nutritionist')
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER grants_record_members AFTER INSERT OR UPDATE OF status ON grants
    FOR EACH ROW EXECUTE FUNCTION record_grant_members();

-- Clinic grants in force before this migration keep exactly the members they reach today.
INSERT INTO grant_members (grant_id, user_id)
SELECT g.id, m.user_id
FROM grants g
JOIN organisation_members m ON m.organisation_id = g.grantee_organisation_id
JOIN users u ON u.id = m.user_id AND u.role IN ('clinician', 'nutritionist')
WHERE g.status = 'active'
ON CONFLICT DO NOTHING;

-- Who each grant reaches right now, in force or not (callers add status and expiry): the
-- person it names, or the clinic's clinicians and nutritionists (never its admins) who are
-- still members and either were members when it came into force or are covered by
-- 'everyone in the clinic'. Every access check reads this view, never grants by hand.
CREATE VIEW grant_reach AS
SELECT g.id AS grant_id, g.patient_id, g.grantee_user_id AS user_id
FROM grants g
WHERE g.grantee_user_id IS NOT NULL
UNION ALL
SELECT g.id, g.patient_id, m.user_id
FROM grants g
JOIN organisation_members m ON m.organisation_id = g.grantee_organisation_id
JOIN users u ON u.id = m.user_id AND u.role IN ('clinician', 'nutritionist')
WHERE g.reach = 'clinic'
   OR EXISTS (SELECT 1 FROM grant_members gm WHERE gm.grant_id = g.id AND gm.user_id = m.user_id);

-- The grants in force right now (active, not expired) and whom each reaches, with its scopes:
-- what the access check, the list of patients and the worklist ask.
CREATE VIEW grants_in_force AS
SELECT r.grant_id, r.patient_id, r.user_id, g.scopes, g.created_at
FROM grant_reach r JOIN grants g ON g.id = r.grant_id
WHERE g.status = 'active' AND (g.expires_at IS NULL OR g.expires_at > now());

-- Thresholds and acknowledgements are signed by the signed-in user, never by a name in the
-- request body: the user's id beside the name shown.
ALTER TABLE alert_thresholds ADD COLUMN set_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN acknowledged_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL;

-- A home display (a bedside screen, a caregiver's buzzer) reads one patient's alerts from
-- the broker as a user of its own, `display-...`, made and revoked by the patient.
CREATE TABLE home_displays (
    id         text PRIMARY KEY,                 -- its MQTT user name and client id
    patient_id uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    label      text,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE INDEX home_displays_patient ON home_displays (patient_id);
