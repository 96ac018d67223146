-- Time is evidence: a contract is signed after its pairing was accepted. The moment of the
-- acceptance, kept on the pairing (2 is PAIRING_STATUS_ACCEPTED). Pairings accepted before
-- this column take the answer's time from pairing_outcomes (0004), else their last update (the
-- latest the acceptance can have been: a contract dated before it is refused, never one after).
ALTER TABLE pairings ADD COLUMN accepted_at TIMESTAMPTZ;

UPDATE pairings p SET accepted_at = o.answered_at
  FROM pairing_outcomes o
 WHERE o.pairing_id = p.id AND o.accepted AND p.status = 2;

UPDATE pairings SET accepted_at = updated_at WHERE status = 2 AND accepted_at IS NULL;
