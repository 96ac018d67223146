-- Test-only tables: what a handler did, and per-aggregate version counters for writers.
CREATE TABLE effects (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL,
    aggregate_id TEXT NOT NULL
);
CREATE TABLE aggregates (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL DEFAULT 0
);
