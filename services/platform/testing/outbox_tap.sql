-- Test databases only: record every outbox row as it is written, in outbox_written. The relay
-- deletes rows once JetStream has them; tests still count what a service wrote. Rows already
-- in the outbox are recorded too. Used by kechuang_platform::testing::tap_outbox and by
-- deploy/cluster/run.sh.
CREATE TABLE IF NOT EXISTS outbox_written (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id UUID NOT NULL,
    event_type TEXT NOT NULL,
    aggregate_id TEXT NOT NULL,
    order_key TEXT
);
-- A database tapped before the outbox had order keys.
ALTER TABLE outbox_written ADD COLUMN IF NOT EXISTS order_key TEXT;

CREATE OR REPLACE FUNCTION outbox_written() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_written (event_id, event_type, aggregate_id, order_key)
    VALUES (NEW.event_id, NEW.event_type, NEW.aggregate_id, NEW.order_key);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER outbox_written AFTER INSERT ON outbox
    FOR EACH ROW EXECUTE FUNCTION outbox_written();

INSERT INTO outbox_written (event_id, event_type, aggregate_id, order_key)
    SELECT event_id, event_type, aggregate_id, order_key FROM outbox ORDER BY id;
