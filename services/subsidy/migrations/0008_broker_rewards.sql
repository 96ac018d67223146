-- Rewards for brokers (issue 24 item 3): a deal's facilitator (the broker the enterprise named
-- when it accepted the pairing, else the technology manager who verified the demand) is
-- rewarded under a policy of its own kind, once the contract is certified and paid.

-- Who facilitated the deal, as kc.contract.signed announced it; empty for contracts signed
-- before facilitators were recorded (no reward).
ALTER TABLE contracts
    ADD COLUMN facilitator      TEXT NOT NULL DEFAULT '',
    ADD COLUMN facilitator_role TEXT NOT NULL DEFAULT '';

-- Every earlier policy is a subsidy policy.
ALTER TABLE policies
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'SUBSIDY' CHECK (kind IN ('SUBSIDY', 'BROKER_REWARD'));

-- An application pays a subsidy to the enterprise or a reward to the broker (the payee); a
-- payment makes at most one of each.
ALTER TABLE applications
    ADD COLUMN kind  TEXT NOT NULL DEFAULT 'SUBSIDY' CHECK (kind IN ('SUBSIDY', 'BROKER_REWARD')),
    ADD COLUMN payee TEXT;
UPDATE applications SET payee = enterprise_id;
ALTER TABLE applications ALTER COLUMN payee SET NOT NULL;
ALTER TABLE applications DROP CONSTRAINT applications_payment_id_key;
ALTER TABLE applications ADD CONSTRAINT applications_kind_payment_key UNIQUE (kind, payment_id);
-- A broker's standing (the per-broker annual cap), by the person as subjects tell people apart
-- (trimmed, case-folded), and a deal's rewards.
CREATE INDEX applications_rewards_by_payee ON applications (lower(btrim(payee)), paid_year)
    WHERE kind = 'BROKER_REWARD';
CREATE INDEX applications_by_contract ON applications (contract_id, kind);
