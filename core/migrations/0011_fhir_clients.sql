-- Hospital systems as clients of a clinic (SMART Backend Services, api/fhir): a clinic admin
-- registers a client with its public keys and the SMART scopes it is pre-authorised for; the
-- client signs a one-time assertion to get a five-minute access token, and then sees exactly
-- the patients who granted that clinic access, while the grant lasts.

CREATE TABLE fhir_clients (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),  -- the OAuth2 client_id
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    name            text NOT NULL,                -- what the patient reads in their access log
    -- The client's public JWK Set, given at registration, or the TLS URL it publishes it at
    -- (SMART: servers support both); exactly one of the two.
    jwks            jsonb,
    jwks_url        text,
    -- SMART scopes the clinic pre-authorised, e.g. 'system/Observation.rs'.
    scopes          text[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    CHECK ((jwks IS NULL) <> (jwks_url IS NULL))
);
-- A clinic admin lists the clinic's clients.
CREATE INDEX fhir_clients_organisation ON fhir_clients (organisation_id, created_at);

-- Assertion ids seen, so one signed assertion buys one token (SMART: "check that the jti
-- value has not been previously encountered for the given iss within the maximum allowed
-- authentication JWT lifetime"). Rows past their expiry are deleted as new ones arrive.
CREATE TABLE fhir_assertion_jtis (
    client_id  uuid NOT NULL REFERENCES fhir_clients (id),
    jti        text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX fhir_assertion_jtis_expiry ON fhir_assertion_jtis (expires_at);
