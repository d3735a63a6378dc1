-- Speed without a second copy of the data (issue 17).
--
-- Trends count the control-solution tests of a period beside the report; they are few, and
-- this index finds them without reading the period's readings from the heap (the series
-- index holds only readings that count).
CREATE INDEX readings_control ON readings (patient_id, measured_at)
    WHERE control AND NOT awaiting_claim;
