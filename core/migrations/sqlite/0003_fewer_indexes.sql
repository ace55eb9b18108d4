-- Migration 0003 (SQLite): one b-tree fewer on every write.
--
-- How this file is run: see 0001. After this migration commits, the runner also switches
-- the database file to write-ahead logging (PRAGMA journal_mode = WAL; see
-- core/src/sql/migrate.rs): a database migrated before that gets it here.
--
-- tasks_user_completed served only the status filter, which the list orders' indexes
-- serve as well (each starts with user_id; completed is then read from the row). Dropping
-- it leaves each insert writing the table, five indexes and AUTOINCREMENT's
-- sqlite_sequence, instead of six indexes. PostgreSQL keeps the index: its writes are
-- not the bottleneck there.

DROP INDEX IF EXISTS tasks_user_completed;
