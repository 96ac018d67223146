-- Finance net (金网) and policy package (政策包).

CREATE TABLE policies (
    id              TEXT PRIMARY KEY,
    name            TEXT        NOT NULL,
    version         INT         NOT NULL,
    fund_id         TEXT        NOT NULL,
    -- [{"from_cumulative_fen": 0, "ratio_bps": 1000}, ...]
    tiers           JSONB       NOT NULL,
    per_contract_cap_fen          BIGINT NOT NULL CHECK (per_contract_cap_fen > 0),
    per_enterprise_annual_cap_fen BIGINT NOT NULL CHECK (per_enterprise_annual_cap_fen > 0),
    contract_types  INT[]       NOT NULL,
    region_prefixes TEXT[]      NOT NULL,
    industry_chains TEXT[]      NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_to        TIMESTAMPTZ,
    four_eyes_threshold_fen BIGINT NOT NULL CHECK (four_eyes_threshold_fen >= 0),
    created_by      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT policies_name_version_key UNIQUE (name, version)
);

-- Registered from kc.contract.signed.
CREATE TABLE contracts (
    id              TEXT PRIMARY KEY,
    demand_id       TEXT        NOT NULL,
    pairing_id      TEXT        NOT NULL,
    enterprise_id   TEXT        NOT NULL,
    supplier        TEXT        NOT NULL,
    contract_no     TEXT        NOT NULL,
    contract_type   INT         NOT NULL,
    amount_fen      BIGINT      NOT NULL CHECK (amount_fen > 0),
    signed_at       TIMESTAMPTZ NOT NULL,
    region_code     TEXT        NOT NULL,
    industry_chain  TEXT        NOT NULL,
    -- Everything recorded as paid under the contract (whatever became of the applications).
    paid_fen        BIGINT      NOT NULL DEFAULT 0 CHECK (paid_fen >= 0 AND paid_fen <= amount_fen),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    contract_id     TEXT        NOT NULL REFERENCES contracts (id),
    enterprise_id   TEXT        NOT NULL,
    amount_fen      BIGINT      NOT NULL CHECK (amount_fen > 0),
    paid_at         TIMESTAMPTZ NOT NULL,
    bank_reference  TEXT        NOT NULL,
    recorded_by     TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT payments_bank_reference_key UNIQUE (bank_reference)
);

CREATE TABLE applications (
    id              TEXT PRIMARY KEY,
    payment_id      TEXT        NOT NULL UNIQUE REFERENCES payments (id),
    contract_id     TEXT        NOT NULL REFERENCES contracts (id),
    enterprise_id   TEXT        NOT NULL,
    policy_id       TEXT REFERENCES policies (id),
    fund_id         TEXT,
    payment_amount_fen BIGINT   NOT NULL,
    amount_fen      BIGINT      NOT NULL CHECK (amount_fen >= 0),
    -- Exact entitlement in fen × basis points, before caps (see the calculator).
    entitled_exact  BIGINT      NOT NULL,
    -- Calendar year (China time) of the payment: the annual cap's year.
    paid_year       INT         NOT NULL,
    status          TEXT        NOT NULL,
    status_reason   TEXT        NOT NULL DEFAULT '',
    computation     TEXT[]      NOT NULL,
    required_approvals INT      NOT NULL,
    recorded_by     TEXT        NOT NULL,
    approved_at     TIMESTAMPTZ,
    payout_reference TEXT       NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    version         BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX applications_enterprise_year ON applications (enterprise_id, paid_year);
CREATE INDEX applications_status_created ON applications (status, created_at, id);
CREATE INDEX applications_waitlist ON applications (fund_id, approved_at, id) WHERE status = 'WAITLISTED';

CREATE TABLE approvals (
    application_id  TEXT        NOT NULL REFERENCES applications (id),
    approver        TEXT        NOT NULL,
    note            TEXT        NOT NULL DEFAULT '',
    approved_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (application_id, approver)
);

-- Payouts owed by the payout worker: one per application whose funds are reserved.
CREATE TABLE payouts (
    application_id  TEXT PRIMARY KEY REFERENCES applications (id),
    -- Idempotency key at the bank: the same id is never paid twice.
    disbursement_id TEXT        NOT NULL UNIQUE,
    enterprise_id   TEXT        NOT NULL,
    amount_fen      BIGINT      NOT NULL CHECK (amount_fen > 0),
    state           TEXT        NOT NULL DEFAULT 'PENDING',
    attempts        INT         NOT NULL DEFAULT 0,
    last_error      TEXT        NOT NULL DEFAULT '',
    locked_until    TIMESTAMPTZ,
    bank_reference  TEXT        NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payouts_pending ON payouts (created_at) WHERE state = 'PENDING';

-- Append-only, hash-chained audit trail of finance actions.
CREATE TABLE audit_log (
    sequence        BIGINT PRIMARY KEY,
    at              TEXT        NOT NULL,
    actor           TEXT        NOT NULL,
    role            TEXT        NOT NULL,
    action          TEXT        NOT NULL,
    target_id       TEXT        NOT NULL,
    details         TEXT        NOT NULL,
    prev_hash       TEXT        NOT NULL,
    hash            TEXT        NOT NULL
);

-- The trail is append-only: refuse edits and deletions at the database too.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
