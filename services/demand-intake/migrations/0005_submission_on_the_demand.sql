-- A demand's first history line (from nothing to submitted, by whoever submitted it, when it
-- was created) is read off the demand itself: written as a row of its own, it was a heap row
-- and two index entries in every submission, for nothing the demand does not already say.
-- Later moves stay rows of demand_status_changes.
ALTER TABLE demands ADD COLUMN submitted_by TEXT;

UPDATE demands d SET submitted_by = c.actor
FROM demand_status_changes c
WHERE c.demand_id = d.id AND c.from_status IS NULL;

ALTER TABLE demands ALTER COLUMN submitted_by SET NOT NULL;

DELETE FROM demand_status_changes WHERE from_status IS NULL;

-- Newest first is the order of the ids (UUIDv7: creation time to the millisecond first), so
-- listings page by id alone: one index entry fewer per submission, and narrower keys in the
-- other two. The keys ascend (a listing reads them backwards) so that a new demand's entry
-- lands at the end of its group, where a full page splits to leave the old page full, rather
-- than at the start, where pages split in half.
DROP INDEX demands_newest;
DROP INDEX demands_by_enterprise;
CREATE INDEX demands_by_enterprise ON demands (enterprise_id, id);
DROP INDEX demands_by_status;
CREATE INDEX demands_by_status ON demands (status, id);
