-- The fund ledger: funds, their accounts, and immutable double-entry transfers.

CREATE TABLE funds (
    id              TEXT        PRIMARY KEY,
    name            TEXT        NOT NULL CHECK (name <> ''),
    low_balance_fen BIGINT      NOT NULL CHECK (low_balance_fen >= 0),
    -- True while available is below the threshold and the alarm has fired (or the fund
    -- started below it); cleared once available is back at or above it.
    low_balance_alerted BOOLEAN NOT NULL,
    -- Version of the fund aggregate: one step per event emitted about it. The fund row is
    -- also the lock that serialises every movement of the fund's money.
    version         BIGINT      NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- TigerBeetle-style accounts: posted debits and credits, balance = credits - debits.
CREATE TABLE accounts (
    id          TEXT   PRIMARY KEY,        -- '<fund id>:<kind>'
    fund_id     TEXT   NOT NULL REFERENCES funds (id),
    kind        TEXT   NOT NULL CHECK (kind IN ('treasury', 'available', 'reserved', 'disbursed')),
    debits_fen  BIGINT NOT NULL DEFAULT 0 CHECK (debits_fen >= 0),
    credits_fen BIGINT NOT NULL DEFAULT 0 CHECK (credits_fen >= 0),
    UNIQUE (fund_id, kind),
    -- The last guard against overdraft: only the treasury may be debited beyond its credits.
    CONSTRAINT accounts_no_overdraft CHECK (kind = 'treasury' OR debits_fen <= credits_fen)
);

CREATE TABLE transfers (
    -- Order of writing. Drawn while the fund row is locked, so within a fund it is also the
    -- order of commit: keyset pages over it never skip a late commit.
    seq            BIGINT      GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- Deterministic (UUIDv5 of phase and application id or top-up reference): a replay
    -- derives the same id and the primary key refuses it.
    id             UUID        PRIMARY KEY,
    fund_id        TEXT        NOT NULL REFERENCES funds (id),
    debit_account  TEXT        NOT NULL REFERENCES accounts (id),
    credit_account TEXT        NOT NULL REFERENCES accounts (id),
    amount_fen     BIGINT      NOT NULL CHECK (amount_fen > 0),
    kind           TEXT        NOT NULL CHECK (kind IN ('top_up', 'reserve', 'post', 'void')),
    -- For a post or void: the reservation it resolves; each is resolved once.
    pending_id     UUID        REFERENCES transfers (id),
    -- The top-up's reference, or the application id of a reservation and its resolution.
    reference      TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (debit_account <> credit_account),
    CHECK ((kind IN ('post', 'void')) = (pending_id IS NOT NULL)),
    CONSTRAINT transfers_resolved_once UNIQUE (pending_id)
);

CREATE INDEX transfers_by_fund ON transfers (fund_id, seq);

-- Transfers are facts: never edited, never deleted.
CREATE FUNCTION transfers_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transfers are immutable: % refused', TG_OP;
END;
$$;

CREATE TRIGGER transfers_are_immutable
    BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION transfers_are_immutable();

CREATE TRIGGER transfers_are_not_truncated
    BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION transfers_are_immutable();
