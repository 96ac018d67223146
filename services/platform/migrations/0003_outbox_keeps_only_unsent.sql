-- The relay deletes what JetStream has acknowledged instead of stamping it sent. The stamp
-- rewrote the whole row (envelope included) with new entries in both unique indexes, since
-- the partial index's column changed; a delete only marks the row dead. The outbox no longer
-- grows without bound, and JetStream's stream is the record of what was published.
DELETE FROM outbox WHERE sent_at IS NOT NULL;
DROP INDEX outbox_unsent;
ALTER TABLE outbox DROP COLUMN sent_at;
