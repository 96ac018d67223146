-- AIP-155 request ids: the first request with an id creates; a repeat returns what it created.
CREATE TABLE idempotency_keys (
    scope       TEXT        NOT NULL,
    request_id  TEXT        NOT NULL,
    -- A digest of the request body: the same id with another body is refused.
    fingerprint TEXT        NOT NULL,
    resource_id TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);
