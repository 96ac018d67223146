-- Who facilitated a deal (issue 24 item 3): the technology manager who verified the demand
-- (kc.demand.verified's verified_by), or the broker (技术经纪人) the enterprise named when it
-- accepted the pairing. The pairing records its facilitator when it is accepted; the contract
-- signed on it copies the pairing's, and kc.contract.signed carries it to the subsidy service.
-- Subjects are kept as the tokens spelled them; facilitator_role is '' when facilitator is.
ALTER TABLE demands ADD COLUMN verified_by TEXT NOT NULL DEFAULT '';

ALTER TABLE pairings
    ADD COLUMN facilitator      TEXT NOT NULL DEFAULT '',
    ADD COLUMN facilitator_role TEXT NOT NULL DEFAULT ''
        CONSTRAINT pairings_facilitator_role_check
        CHECK (facilitator_role IN ('', 'broker', 'tech_manager'));

ALTER TABLE contracts
    ADD COLUMN facilitator      TEXT NOT NULL DEFAULT '',
    ADD COLUMN facilitator_role TEXT NOT NULL DEFAULT ''
        CONSTRAINT contracts_facilitator_role_check
        CHECK (facilitator_role IN ('', 'broker', 'tech_manager'));

-- Older rows: an accepted pairing (2 is PAIRING_STATUS_ACCEPTED) gets its demand's verifier
-- where matching knows it, else stays ''. Demands stored before this migration did not keep
-- their verifier, so on a database written by the earlier schema these stay '' (nobody is
-- invented); the statements are here for rows that do know it.
UPDATE pairings p SET facilitator = d.verified_by, facilitator_role = 'tech_manager'
  FROM demands d
 WHERE d.id = p.demand_id AND p.status = 2 AND d.verified_by <> '' AND p.facilitator = '';

UPDATE contracts c SET facilitator = p.facilitator, facilitator_role = p.facilitator_role
  FROM pairings p
 WHERE p.id = c.pairing_id AND c.facilitator = '';
