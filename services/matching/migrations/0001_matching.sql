-- Sky net (天网): the achievement catalog, the demands it pairs, pairings and contracts.

-- Achievements (科技成果) offered by universities and institutes. Never edited once registered.
CREATE TABLE achievements (
    id               TEXT        PRIMARY KEY,
    institution      TEXT        NOT NULL,
    title            TEXT        NOT NULL,
    abstract         TEXT        NOT NULL,
    keywords         TEXT[]      NOT NULL,
    industry_chain   TEXT        NOT NULL,
    trl              INT         NOT NULL CHECK (trl BETWEEN 1 AND 9),
    -- kechuang.common.v1.TransferMode numbers, none UNSPECIFIED.
    transfer_modes   INT[]       NOT NULL,
    asking_price_fen BIGINT      NOT NULL CHECK (asking_price_fen >= 0),
    region_code      TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Demands as demand-intake announced them. A demand is open once verified; closed for good
-- when withdrawn or rejected (a closing event that arrives before the verification leaves a
-- closed row without details, and the late verification keeps it closed); contracted once a
-- contract is signed on one of its pairings (no more pairings are pushed to it).
CREATE TABLE demands (
    id             TEXT        PRIMARY KEY,
    enterprise_id  TEXT        NOT NULL,
    title          TEXT        NOT NULL DEFAULT '',
    description    TEXT        NOT NULL DEFAULT '',
    industry_chain TEXT        NOT NULL DEFAULT '',
    -- kechuang.common.v1.ContractType number.
    contract_type  INT         NOT NULL DEFAULT 0,
    budget_min_fen BIGINT      NOT NULL DEFAULT 0,
    budget_max_fen BIGINT      NOT NULL DEFAULT 0,
    region_code    TEXT        NOT NULL DEFAULT '',
    deadline       TIMESTAMPTZ,
    verified       BOOLEAN     NOT NULL DEFAULT false,
    status         TEXT        NOT NULL
                   CHECK (status IN ('open', 'withdrawn', 'rejected', 'contracted')),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX demands_open ON demands (id) WHERE status = 'open' AND verified;

-- A demand paired with an achievement. Status numbers are kechuang.matching.v1.PairingStatus.
CREATE TABLE pairings (
    id             TEXT             PRIMARY KEY,
    demand_id      TEXT             NOT NULL REFERENCES demands (id),
    achievement_id TEXT             NOT NULL REFERENCES achievements (id),
    enterprise_id  TEXT             NOT NULL,
    score          DOUBLE PRECISION NOT NULL,
    -- 1 is best among the demand's pairings; recomputed when a better one is pushed later.
    rank           INT              NOT NULL CHECK (rank >= 1),
    reasons        TEXT[]           NOT NULL,
    status         INT              NOT NULL,
    note           TEXT             NOT NULL DEFAULT '',
    version        BIGINT           NOT NULL DEFAULT 1,
    created_at     TIMESTAMPTZ      NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ      NOT NULL DEFAULT now(),
    -- A replayed verification or a re-imported achievement never pairs the same two twice.
    CONSTRAINT pairings_demand_achievement_key UNIQUE (demand_id, achievement_id)
);

CREATE INDEX pairings_by_demand ON pairings (demand_id, rank, id);
CREATE INDEX pairings_by_enterprise ON pairings (enterprise_id, created_at);

-- Technology contracts (技术合同) signed for accepted pairings, one per pairing.
CREATE TABLE contracts (
    id                   TEXT        PRIMARY KEY,
    pairing_id           TEXT        NOT NULL REFERENCES pairings (id),
    demand_id            TEXT        NOT NULL,
    achievement_id       TEXT        NOT NULL,
    enterprise_id        TEXT        NOT NULL,
    supplier             TEXT        NOT NULL,
    supplier_region_code TEXT        NOT NULL,
    contract_no          TEXT        NOT NULL,
    contract_type        INT         NOT NULL,
    amount_fen           BIGINT      NOT NULL CHECK (amount_fen > 0),
    signed_at            TIMESTAMPTZ NOT NULL,
    region_code          TEXT        NOT NULL,
    industry_chain       TEXT        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT contracts_contract_no_key UNIQUE (contract_no),
    CONSTRAINT contracts_pairing_key UNIQUE (pairing_id)
);
