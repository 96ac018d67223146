-- A history line referred to its demand by a foreign key, whose check locks the demand's row
-- (FOR KEY SHARE) for every line written: for a submission, a second write to the row the
-- same statement has just inserted, and a WAL record of its own. Demands are never deleted
-- (withdrawal is a status; no RPC deletes, and these triggers refuse it), and every history
-- line is written in the statement that inserts or locks its demand, so the reference holds
-- without the check.
ALTER TABLE demand_status_changes DROP CONSTRAINT demand_status_changes_demand_id_fkey;

CREATE FUNCTION demands_are_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'demands are never deleted: withdrawal is a status';
END;
$$;

CREATE TRIGGER demands_are_kept BEFORE DELETE ON demands
    FOR EACH ROW EXECUTE FUNCTION demands_are_kept();
CREATE TRIGGER demands_are_never_truncated BEFORE TRUNCATE ON demands
    FOR EACH STATEMENT EXECUTE FUNCTION demands_are_kept();
