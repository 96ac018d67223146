-- Monthly registration figures: a certified contract counts as absorbed (吸纳) by its
-- enterprise's city and exported (输出) by its supplier's. kc.contract.signed carries the
-- supplier's region (field 13); contracts recorded before this migration did not keep it and
-- get '' (their exported side shows under no city).
ALTER TABLE contracts ADD COLUMN supplier_region_code TEXT NOT NULL DEFAULT '';

-- The figures read certified registrations by the time they were certified.
CREATE INDEX registrations_certified_by_decided ON registrations (decided_at)
    WHERE status = 'CERTIFIED';
