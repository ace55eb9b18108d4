-- Migration 0001 (PostgreSQL): tasks and idempotency keys.
--
-- How this file is run (task_api_core::sql::migrate): lines starting with `--` are dropped,
-- then the rest is split into statements at every line that ends with `;`, and each
-- statement is sent on its own (hosts such as Spin take one statement per call). So a `;`
-- may end a line only where a statement ends. The whole file runs in one transaction,
-- under an advisory lock, and its version is recorded in schema_migrations.
--
-- Times are milliseconds since the Unix epoch; due dates are `YYYY-MM-DD` text; priority is
-- its rank (1 low, 2 medium, 3 high). title_fold / description_fold hold the core's
-- lower-cased forms, used to sort by title and to search; title_fold uses the "C" collation
-- so that it sorts by code point, like Rust's String.

CREATE TABLE tasks (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          TEXT NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 128),
    title            TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    title_fold       TEXT COLLATE "C" NOT NULL,
    description      TEXT NULL CHECK (char_length(description) BETWEEN 1 AND 2000),
    description_fold TEXT NULL,
    completed        BOOLEAN NOT NULL,
    priority         SMALLINT NOT NULL CHECK (priority BETWEEN 1 AND 3),
    due_date         TEXT COLLATE "C" NULL CHECK (due_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    completed_at     BIGINT NULL,
    version          BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1),
    CONSTRAINT tasks_description_fold_present CHECK ((description IS NULL) = (description_fold IS NULL)),
    CONSTRAINT tasks_completed_at_iff_completed CHECK (completed = (completed_at IS NOT NULL)),
    CONSTRAINT tasks_updated_not_before_created CHECK (updated_at >= created_at)
);

-- One index per list order (each also serves the owner filter and the keyset condition).
CREATE INDEX tasks_user_created ON tasks (user_id, created_at, id);
CREATE INDEX tasks_user_updated ON tasks (user_id, updated_at, id);
CREATE INDEX tasks_user_title ON tasks (user_id, title_fold, id);
CREATE INDEX tasks_user_priority ON tasks (user_id, priority, id);
-- Matches ORDER BY (due_date IS NULL), due_date, id: undated tasks last in both directions.
CREATE INDEX tasks_user_due ON tasks (user_id, (due_date IS NULL), due_date, id);
CREATE INDEX tasks_user_completed ON tasks (user_id, completed, id);

-- One row per (user, key) used within the last 24 hours (older rows are taken over by the
-- next create with the same key). task_id is NULL only inside the creating transaction;
-- there is no foreign key: a replay of a deleted task is a 404.
CREATE TABLE idempotency_keys (
    user_id     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    task_id     BIGINT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
