-- The subsidy follows the certified amount (issue 24): a payment counts only on a registered
-- contract, up to its pro-rata share of the certified technical amount, unless the policy
-- says it subsidises unregistered contracts.

-- Policies written before registration existed computed on the whole payment of any contract:
-- they keep that meaning. A new proposal requires registration unless it says otherwise.
ALTER TABLE policies ADD COLUMN subsidise_unregistered BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE policies ALTER COLUMN subsidise_unregistered SET DEFAULT false;

-- The part of the payment the subsidy is computed on; the whole payment for applications
-- judged before this change (what the calculator used then).
ALTER TABLE applications ADD COLUMN eligible_base_fen BIGINT;
UPDATE applications SET eligible_base_fen = CASE WHEN policy_id IS NULL THEN 0 ELSE payment_amount_fen END;
ALTER TABLE applications ALTER COLUMN eligible_base_fen SET NOT NULL;
ALTER TABLE applications ALTER COLUMN eligible_base_fen SET DEFAULT 0;
ALTER TABLE applications ADD CONSTRAINT applications_eligible_base_within_payment
    CHECK (eligible_base_fen BETWEEN 0 AND payment_amount_fen);

-- Applications waiting for their contract's registration, found by contract when it is
-- decided and by age when windows end.
CREATE INDEX applications_awaiting_registration ON applications (contract_id, created_at, id)
    WHERE status = 'AWAITING_REGISTRATION';
