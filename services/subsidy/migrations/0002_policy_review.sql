-- Policies are maker–checker: a finance officer proposes a version; it is in force only after
-- a finance approver who is not the proposer approves it. At most one version of a name is in
-- force; approving a newer one supersedes it.
ALTER TABLE policies
    ADD COLUMN status        TEXT NOT NULL DEFAULT 'PROPOSED'
        CHECK (status IN ('PROPOSED', 'IN_FORCE', 'REJECTED', 'SUPERSEDED')),
    ADD COLUMN decided_by    TEXT NOT NULL DEFAULT '',
    ADD COLUMN decided_at    TIMESTAMPTZ,
    ADD COLUMN decision_note TEXT NOT NULL DEFAULT '',
    ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '',
    ADD COLUMN superseded_at TIMESTAMPTZ;

-- The seeded Hubei rule was put in force at installation, by the seed, without a second
-- person: it stays in force, recorded as such. Every other version was created by one person
-- alone before this rule: it goes back to PROPOSED and waits for a second person.
UPDATE policies
   SET status = 'IN_FORCE', decided_by = 'seed', decided_at = created_at,
       decision_note = 'seeded at installation: the published rule, in force without a second person'
 WHERE id = 'pol-hubei-tech-contract' AND created_by = 'seed';

CREATE UNIQUE INDEX policies_one_in_force ON policies (name) WHERE status = 'IN_FORCE';
CREATE INDEX policies_by_status ON policies (status, created_at, id);
