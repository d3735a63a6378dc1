-- The access log names every kind of caller, not only signed-in users: a Nightscout follower
-- token, a hospital's FHIR client, the system itself (an erasure, an archive). It also keeps
-- attempts that were refused, so the patient sees who tried and was turned away.
ALTER TABLE audit_log ALTER COLUMN actor_user_id DROP NOT NULL;
ALTER TABLE audit_log
    ADD COLUMN actor_kind text NOT NULL DEFAULT 'user'
        CHECK (actor_kind IN ('user', 'follower_token', 'uploader', 'fhir_client', 'system')),
    -- What the patient reads for a caller that is not a user: the token's or client's name.
    ADD COLUMN actor_label text,
    ADD COLUMN outcome text NOT NULL DEFAULT 'allowed' CHECK (outcome IN ('allowed', 'denied')),
    ADD CONSTRAINT audit_log_actor CHECK (actor_kind <> 'user' OR actor_user_id IS NOT NULL);
