-- Migration 0004 (SQLite): the login throttle's counters, shared by every instance.
--
-- How this file is run: see 0001. The columns are those of the PostgreSQL migration 0004,
-- which says what they hold.

CREATE TABLE login_attempts (
    key        TEXT PRIMARY KEY NOT NULL CHECK (length(key) = 64),
    attempts   INTEGER NOT NULL CHECK (attempts >= 0),
    expires_at INTEGER NOT NULL CHECK (typeof(expires_at) = 'integer')
);
CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);
