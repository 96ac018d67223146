-- Time is evidence: a policy says for how many days after a payment it may be claimed.
ALTER TABLE policies
    ADD COLUMN claim_window_days INT NOT NULL DEFAULT 365
        CHECK (claim_window_days BETWEEN 1 AND 3650);
