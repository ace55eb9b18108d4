-- Migration 0004 (PostgreSQL): the login throttle's counters, shared by every instance.
--
-- How this file is run: see 0001.
--
-- key is a ThrottleKey: the SHA-256 (hex) of what is counted and its fixed window, so no
-- email or client address is stored in the clear. attempts counts the attempts of that
-- window (a login that succeeded takes its count back); expires_at (milliseconds since the
-- epoch) is the window's end, after which the row is dead and is deleted by the next count.

CREATE TABLE login_attempts (
    key        TEXT COLLATE "C" PRIMARY KEY CHECK (char_length(key) = 64),
    attempts   BIGINT NOT NULL CHECK (attempts >= 0),
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_attempts_expiry ON login_attempts (expires_at);
