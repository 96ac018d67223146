-- Plumbing shared by every service: the transactional outbox and the consumers' memory.
-- Tracked in _kc_platform_migrations, apart from each service's own migrations.

CREATE TABLE outbox (
    -- Orders rows for the relay. Values are taken before commit, so the relay never
    -- remembers "the last id it saw": it always reads every unsent row in id order.
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id    UUID        NOT NULL UNIQUE,
    event_type  TEXT        NOT NULL,
    aggregate_type TEXT     NOT NULL,
    aggregate_id   TEXT     NOT NULL,
    aggregate_version BIGINT NOT NULL,
    -- The encoded kechuang.events.v1.Envelope.
    envelope    BYTEA       NOT NULL,
    traceparent TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at     TIMESTAMPTZ
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE processed_events (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    event_type   TEXT        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
