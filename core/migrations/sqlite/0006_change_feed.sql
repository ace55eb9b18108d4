-- Migration 0006 (SQLite): the change feed.
--
-- How this file is run: see 0001 (a trigger is written on one line, so that its inner `;`
-- end no line). The tables are PostgreSQL's (see its 0006). SQLite has one writer at a
-- time, so numbers are taken in commit order by any counter. Two triggers give every
-- inserted or changed task its user's next number inside the statement that writes it, so
-- a create or an update stays one statement; a delete takes its number in its BEGIN
-- IMMEDIATE transaction, for the tombstone. Batches and imports run in such a transaction
-- (PostgreSQL's task_api_batch function has no counterpart here): their changes take
-- consecutive numbers, and nothing can come between them.

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

-- The user's next number for each task a statement inserts or changes (not for the
-- triggers' own update of change_seq, which is not in the column list), and the user's
-- epoch at the first write.
CREATE TRIGGER tasks_change_insert AFTER INSERT ON tasks BEGIN INSERT OR IGNORE INTO task_feeds (user_id, seq, epoch) VALUES (NEW.user_id, 0, abs(random() % 9007199254740991) + 1); UPDATE task_feeds SET seq = seq + 1 WHERE user_id = NEW.user_id; UPDATE tasks SET change_seq = (SELECT seq FROM task_feeds WHERE user_id = NEW.user_id) WHERE id = NEW.id; END;
CREATE TRIGGER tasks_change_update AFTER UPDATE OF title, description, completed, priority, due_date, completed_at, updated_at, version ON tasks BEGIN INSERT OR IGNORE INTO task_feeds (user_id, seq, epoch) VALUES (NEW.user_id, 0, abs(random() % 9007199254740991) + 1); UPDATE task_feeds SET seq = seq + 1 WHERE user_id = NEW.user_id; UPDATE tasks SET change_seq = (SELECT seq FROM task_feeds WHERE user_id = NEW.user_id) WHERE id = NEW.id; END;
