-- Migration 0006 (SQLite): the change feed.
--
-- How this file is run: see 0001. The tables are PostgreSQL's (see its 0006). SQLite has one
-- writer at a time, so numbers are taken in commit order by any counter; the store takes the
-- user's next number at the start of each write's BEGIN IMMEDIATE transaction. Batches and
-- imports run in such a transaction too (PostgreSQL's task_api_batch function has no
-- counterpart here).

ALTER TABLE tasks ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tasks_user_change ON tasks (user_id, change_seq, id);

CREATE TABLE task_feeds (
    user_id    TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    pruned_seq INTEGER NOT NULL DEFAULT 0,
    epoch      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE task_tombstones (
    user_id    TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    task_id    INTEGER NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq, task_id)
);
-- Each delete prunes its user's tombstones older than the retention: this finds them
-- without reading the user's recent ones.
CREATE INDEX task_tombstones_user_deleted ON task_tombstones (user_id, deleted_at);

ALTER TABLE idempotency_keys ADD COLUMN imported INTEGER NULL;
