-- Sentence embeddings ("meanings") for semantic matching, written by the embedding worker
-- (achievements) and by the verification handler (demands). One row per text and model:
-- vectors of different models are not comparable, so a new model starts a new backlog and
-- the old rows are simply not read. The vector is `dim` little-endian f32.
CREATE TABLE achievement_meanings (
    achievement_id TEXT        NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    model          TEXT        NOT NULL,
    vector         BYTEA       NOT NULL,
    embedded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (achievement_id, model)
);

CREATE TABLE demand_meanings (
    demand_id   TEXT        NOT NULL REFERENCES demands (id) ON DELETE CASCADE,
    model       TEXT        NOT NULL,
    vector      BYTEA       NOT NULL,
    embedded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (demand_id, model)
);

-- Achievements waiting for the embedding worker, oldest id first: written with the
-- achievement, deleted with its vector. (Finding the missing ones by an anti-join over the
-- whole catalog took seconds a batch at 100,000 achievements.)
CREATE TABLE embedding_queue (
    achievement_id TEXT PRIMARY KEY REFERENCES achievements (id) ON DELETE CASCADE
);
