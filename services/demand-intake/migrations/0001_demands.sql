-- Ground net (地网): enterprises, their demands, and every move of a demand's status.

CREATE TABLE enterprises (
    -- The unified social credit code: an enterprise's id is its code (GB 32100-2015).
    id             TEXT        PRIMARY KEY,
    name           TEXT        NOT NULL,
    credit_code    TEXT        NOT NULL,
    region_code    TEXT        NOT NULL,
    industry_chain TEXT        NOT NULL,
    registered_by  TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT enterprises_credit_code_key UNIQUE (credit_code),
    CONSTRAINT enterprises_id_is_credit_code CHECK (id = credit_code)
);

CREATE TABLE demands (
    id             UUID        PRIMARY KEY,
    enterprise_id  TEXT        NOT NULL,
    title          TEXT        NOT NULL,
    description    TEXT        NOT NULL,
    industry_chain TEXT        NOT NULL,
    contract_type  INTEGER     NOT NULL,
    budget_min_fen BIGINT      NOT NULL,
    budget_max_fen BIGINT      NOT NULL,
    region_code    TEXT        NOT NULL,
    deadline       TIMESTAMPTZ NOT NULL,
    status         TEXT        NOT NULL,
    -- Bumped by every status change; the aggregate version of the events it emits.
    version        BIGINT      NOT NULL,
    -- The chain the demand's events belong to (its submission started it).
    correlation_id TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT demands_enterprise_fkey FOREIGN KEY (enterprise_id) REFERENCES enterprises (id),
    CONSTRAINT demands_budget CHECK (budget_min_fen >= 0 AND budget_min_fen <= budget_max_fen),
    CONSTRAINT demands_status CHECK (status IN ('submitted', 'verified', 'rejected', 'matching',
        'docking', 'contracted', 'completed', 'withdrawn'))
);

-- Keyset pages, newest first: all, by enterprise, by status.
CREATE INDEX demands_newest ON demands (created_at DESC, id DESC);
CREATE INDEX demands_by_enterprise ON demands (enterprise_id, created_at DESC, id DESC);
CREATE INDEX demands_by_status ON demands (status, created_at DESC, id DESC);

-- Every applied move, the submission included (from_status NULL).
CREATE TABLE demand_status_changes (
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    demand_id      UUID        NOT NULL REFERENCES demands (id),
    from_status    TEXT,
    to_status      TEXT        NOT NULL,
    -- The person (token subject) or the event type that moved it.
    actor          TEXT        NOT NULL,
    cause_event_id UUID,
    note           TEXT        NOT NULL DEFAULT '',
    changed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX demand_status_changes_by_demand ON demand_status_changes (demand_id, id);

-- Downstream events that did not move a demand (late, repeated, about a closed or unknown
-- demand), kept with the reason so that nothing is silently dropped.
CREATE TABLE demand_ignored_events (
    event_id       UUID        PRIMARY KEY,
    event_type     TEXT        NOT NULL,
    demand_id      TEXT        NOT NULL,
    status_then    TEXT,
    reason         TEXT        NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
