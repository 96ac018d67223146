-- Who registered an achievement (the token's subject), so that only they (or a technology
-- manager) may withdraw it; rows from before carry ''. A withdrawn achievement stays for the
-- pairings and contracts that name it, but is never paired again.
ALTER TABLE achievements
    ADD COLUMN registered_by    TEXT        NOT NULL DEFAULT '',
    ADD COLUMN withdrawn_at     TIMESTAMPTZ,
    ADD COLUMN withdrawn_reason TEXT        NOT NULL DEFAULT '';
