-- Migration 0002 (PostgreSQL): the built-in accounts.
--
-- How this file is run (task_api_core::sql::migrate): lines starting with `--` are dropped,
-- then the rest is split into statements at every line that ends with `;`, and each
-- statement is sent on its own (hosts such as Spin take one statement per call). So a `;`
-- may end a line only where a statement ends. The whole file runs in one transaction,
-- under an advisory lock, and its version is recorded in schema_migrations.
--
-- email keeps the address as registered (trimmed); email_fold holds the core's lower-cased
-- form (Email::folded), which is what makes two addresses the same account: its UNIQUE
-- constraint is what `INSERT … ON CONFLICT (email_fold) DO NOTHING` relies on. password_hash
-- is the Argon2id PHC string. created_at is milliseconds since the Unix epoch. The checks
-- mirror the core's rules (user id length, email length and shape, the hash's algorithm).

CREATE TABLE users (
    id            TEXT PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 128),
    email         TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND position('@' in email) > 1),
    email_fold    TEXT COLLATE "C" NOT NULL UNIQUE CHECK (char_length(email_fold) BETWEEN 3 AND 254 AND position('@' in email_fold) > 1),
    password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    BIGINT NOT NULL
);
