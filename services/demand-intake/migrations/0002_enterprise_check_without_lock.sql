-- A demand's enterprise was checked by a foreign key, which locks the enterprise's row
-- (FOR KEY SHARE) in every submission: the costliest part of intake's write, measured with
-- pgbench at a quarter of its time. Enterprises are never deleted (no RPC does, and this
-- trigger refuses it), so the submission's own existence check in the same statement keeps
-- the invariant without the lock.
ALTER TABLE demands DROP CONSTRAINT demands_enterprise_fkey;

CREATE FUNCTION enterprises_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'enterprises are never deleted: demands refer to them';
END;
$$;

CREATE TRIGGER enterprises_are_kept BEFORE DELETE ON enterprises
    FOR EACH ROW EXECUTE FUNCTION enterprises_are_kept();
CREATE TRIGGER enterprises_are_never_truncated BEFORE TRUNCATE ON enterprises
    FOR EACH STATEMENT EXECUTE FUNCTION enterprises_are_kept();
