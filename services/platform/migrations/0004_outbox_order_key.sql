-- The events that must reach JetStream in order share an order key; the relay publishes
-- rows of different keys side by side. NULL: the event's aggregate (`aggregate_type/aggregate_id`),
-- which is what every event had before. A producer sets a narrower key where its aggregate's
-- events are about independent things (the ledger's transfers: one application each).
ALTER TABLE outbox ADD COLUMN order_key TEXT;
