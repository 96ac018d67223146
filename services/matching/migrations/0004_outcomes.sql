-- What enterprises did with their pairings: each answer, at the rank and score the enterprise
-- saw when it answered (ranks move when better pairings arrive later), and whether a contract
-- followed. The engine's labels from real use (`evaluate --from-db`).
CREATE TABLE pairing_outcomes (
    pairing_id     TEXT             PRIMARY KEY REFERENCES pairings (id),
    demand_id      TEXT             NOT NULL,
    achievement_id TEXT             NOT NULL,
    rank           INT              NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    accepted       BOOLEAN          NOT NULL,
    answered_at    TIMESTAMPTZ      NOT NULL DEFAULT now(),
    contracted_at  TIMESTAMPTZ
);
