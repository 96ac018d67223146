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
