-- Technology-contract registration (技术合同认定登记): every recorded contract waits for a
-- registrar to certify it (number, statutory type, technical amount) or refuse it, until its
-- deadline (signed_at + the registration window, fixed when the contract is recorded, so a
-- later change of the setting moves no contract's deadline).
CREATE TABLE registrations (
    contract_id          TEXT PRIMARY KEY REFERENCES contracts (id),
    status               TEXT        NOT NULL DEFAULT 'WAITING'
        CHECK (status IN ('WAITING', 'CERTIFIED', 'REFUSED')),
    deadline             TIMESTAMPTZ NOT NULL,
    registration_no      TEXT,
    contract_type        INT,
    certified_amount_fen BIGINT CHECK (certified_amount_fen > 0),
    note                 TEXT        NOT NULL DEFAULT '',
    refusal_reason       TEXT        NOT NULL DEFAULT '',
    registrar            TEXT        NOT NULL DEFAULT '',
    decided_at           TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    version              BIGINT      NOT NULL DEFAULT 1,
    -- A decision is whole: a certification has its number, type, amount and registrar; a
    -- refusal its reason and registrar; a waiting registration none of them.
    CONSTRAINT registrations_decision_whole CHECK (
        (status = 'WAITING' AND registration_no IS NULL AND decided_at IS NULL AND registrar = '')
        OR (status = 'CERTIFIED' AND registration_no IS NOT NULL AND contract_type IS NOT NULL
            AND certified_amount_fen IS NOT NULL AND decided_at IS NOT NULL AND registrar <> '')
        OR (status = 'REFUSED' AND registration_no IS NULL AND refusal_reason <> ''
            AND decided_at IS NOT NULL AND registrar <> '')
    )
);
-- One number, one contract, whatever the case it was typed in.
CREATE UNIQUE INDEX registrations_registration_no_key ON registrations (upper(registration_no))
    WHERE registration_no IS NOT NULL;
CREATE INDEX registrations_by_deadline ON registrations (deadline, contract_id);
CREATE INDEX registrations_by_status ON registrations (status, deadline, contract_id);

-- Contracts recorded before registration existed wait too, under the default window of 30
-- days (the setting is not known to a migration); most of them are past it already.
INSERT INTO registrations (contract_id, deadline, created_at)
SELECT id, signed_at + INTERVAL '30 days', created_at FROM contracts
ON CONFLICT (contract_id) DO NOTHING;
