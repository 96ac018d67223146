-- A submission's request id (AIP-155) is kept on the demand it created instead of in the
-- shared idempotency_keys table, so that one INSERT .. ON CONFLICT on demands both claims the
-- id and writes the demand, for a whole batch of submissions at once (intake's group commit).
ALTER TABLE demands
    ADD COLUMN request_id TEXT,
    -- SHA-256 of the request body: the same id with another body is refused.
    ADD COLUMN request_fingerprint TEXT,
    ADD CONSTRAINT demands_request_fingerprint CHECK ((request_id IS NULL) = (request_fingerprint IS NULL));

UPDATE demands d
SET request_id = k.request_id, request_fingerprint = k.fingerprint
FROM idempotency_keys k
WHERE k.scope = 'submit_demand/' || d.enterprise_id AND k.resource_id = d.id::text;

DELETE FROM idempotency_keys WHERE scope LIKE 'submit_demand/%';

-- Request ids are the enterprise's own: two enterprises may pick the same one.
CREATE UNIQUE INDEX demands_request_id ON demands (enterprise_id, request_id)
    WHERE request_id IS NOT NULL;
