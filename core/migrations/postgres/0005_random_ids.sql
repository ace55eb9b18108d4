-- Migration 0005 (PostgreSQL): task ids stop being a sequence.
--
-- How this file is run: see 0001.
--
-- A sequence tells a user who creates two tasks an hour apart how many tasks everyone else
-- created in between. New ids are drawn by the core instead (TaskId::fresh: unguessable,
-- at most 2^53 - 1 so that JavaScript keeps them exact) and every INSERT names its id, so
-- the identity, and the sequence behind it, go. Existing rows keep their ids.

ALTER TABLE tasks ALTER COLUMN id DROP IDENTITY IF EXISTS;
