-- A bank reference is unique within one enterprise's payments, not across enterprises: an
-- enterprise must not learn, by being refused, which references another has recorded.
ALTER TABLE payments DROP CONSTRAINT payments_bank_reference_key;
ALTER TABLE payments ADD CONSTRAINT payments_enterprise_bank_reference_key
    UNIQUE (enterprise_id, bank_reference);
