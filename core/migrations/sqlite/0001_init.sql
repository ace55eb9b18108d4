-- Migration 0001 (SQLite): tasks and idempotency keys.
--
-- How this file is run (task_api_core::sql::migrate): lines starting with `--` are dropped,
-- then the rest is split into statements at every line that ends with `;`, and each
-- statement is sent on its own. So a `;` may end a line only where a statement ends. The
-- whole file runs in one `BEGIN IMMEDIATE` transaction and its version is recorded in
-- schema_migrations.
--
-- Times are milliseconds since the Unix epoch; due dates are `YYYY-MM-DD` text; priority is
-- its rank (1 low, 2 medium, 3 high); completed is 0 or 1. title_fold / description_fold
-- hold the core's lower-cased forms, used to sort by title and to search; SQLite's default
-- BINARY collation compares them by code point, like Rust's String. AUTOINCREMENT keeps ids
-- from ever being reused.

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT NOT NULL CHECK (length(user_id) BETWEEN 1 AND 128),
    title            TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    title_fold       TEXT NOT NULL,
    description      TEXT NULL CHECK (description IS NULL OR length(description) BETWEEN 1 AND 2000),
    description_fold TEXT NULL,
    completed        INTEGER NOT NULL CHECK (completed IN (0, 1)),
    priority         INTEGER NOT NULL CHECK (priority IN (1, 2, 3)),
    due_date         TEXT NULL CHECK (due_date IS NULL OR due_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    created_at       INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at       INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    completed_at     INTEGER NULL CHECK (completed_at IS NULL OR typeof(completed_at) = 'integer'),
    version          INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    CHECK ((description IS NULL) = (description_fold IS NULL)),
    CHECK (completed = (completed_at IS NOT NULL)),
    CHECK (updated_at >= created_at)
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
    task_id     INTEGER NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
