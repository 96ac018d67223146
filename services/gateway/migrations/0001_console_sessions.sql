-- The console's sign-ins (issue 20, item 5). The browser holds a random secret; this table
-- holds only its SHA-256 and the person's bearer token sealed under a key derived from the
-- secret, so a reader of the table can neither present a session nor lift a token from it.
CREATE TABLE console_sessions (
    id           BYTEA PRIMARY KEY CHECK (octet_length(id) = 32),
    subject      TEXT NOT NULL,
    role         TEXT NOT NULL,
    sealed_token BYTEA NOT NULL,
    signed_in_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- However busy the session: the absolute timeout, or the token's own expiry if sooner.
    expires_at   TIMESTAMPTZ NOT NULL,
    ended_at     TIMESTAMPTZ,
    -- 'signed out', 'signed out everywhere'.
    ended_why    TEXT,
    CHECK ((ended_at IS NULL) = (ended_why IS NULL))
);

-- Signing a person out everywhere; the sweep of old rows.
CREATE INDEX console_sessions_open_by_subject ON console_sessions (subject) WHERE ended_at IS NULL;
CREATE INDEX console_sessions_by_expiry ON console_sessions (expires_at);
