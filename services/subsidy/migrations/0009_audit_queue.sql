-- Finance actions are queued here in their own transaction, without a lock, and the
-- integrator (store::audit::integrate) links them into audit_log's hash chain in queue order.
-- Until 0009 every audited transaction took audit_log's table lock and held it through its
-- commit, so approvals, payouts and certifications ran one at a time (docs/benchmarks.md).
CREATE TABLE audit_queue (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              TEXT        NOT NULL,
    actor           TEXT        NOT NULL,
    role            TEXT        NOT NULL,
    action          TEXT        NOT NULL,
    target_id       TEXT        NOT NULL,
    details         TEXT        NOT NULL
);

-- A queued entry is moved into the chain whole (deleted here, inserted there, one
-- transaction), never edited.
CREATE FUNCTION audit_queue_no_edit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_queue entries are never edited';
END $$;
CREATE TRIGGER audit_queue_no_update BEFORE UPDATE ON audit_queue
    FOR EACH ROW EXECUTE FUNCTION audit_queue_no_edit();
