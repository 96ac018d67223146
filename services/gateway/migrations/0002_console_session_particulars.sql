-- What a sign-in through the identity provider adds to a session (issue 21): the name the
-- provider gives the person, for the page header (the subject is often an opaque id), and the
-- provider's refresh token, sealed like the access token, with which the gateway renews an
-- access token about to expire instead of ending the session.
ALTER TABLE console_sessions
    ADD COLUMN display_name TEXT,
    ADD COLUMN sealed_refresh_token BYTEA;
