-- Sessions ended by "Log out". A session cookie is signed, not stored, so a copy of it stays
-- valid until it expires unless its id is listed here; an id is kept until the session's
-- absolute expiry, after which the cookie is refused anyway and the row is pruned.
CREATE TABLE revoked_sessions (
    id text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);
