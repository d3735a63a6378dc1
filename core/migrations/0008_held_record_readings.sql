-- A held record whose only fault is its time (the meter's clock was never set, or says a date
-- it cannot mean) carries the reading it would be (`reading`: the contract's reading fields
-- but the instant), so the patient can confirm the bridge's estimate or give the time, and
-- the reading is then stored through the one intake. `reading_identity` names the reading
-- that resolution stored.
ALTER TABLE held_records
    ADD COLUMN reading jsonb,
    ADD COLUMN reading_identity uuid;

-- A patient's unresolved held records first (the page lists them for action).
CREATE INDEX held_records_open ON held_records (patient_id, id DESC) WHERE resolved_at IS NULL;
