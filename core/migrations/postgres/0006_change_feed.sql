-- Migration 0006 (PostgreSQL): the change feed, and batches applied by one function.
--
-- How this file is run: see 0001. The function's body is dollar-quoted with $body$, inside
-- which the runner does not split statements.
--
-- Every write takes the next number of its user's counter (task_feeds.seq) in the same
-- statement as the change, and the counter's row stays locked until the write commits: one
-- user's writes get their numbers in commit order, so a reader never sees a number before
-- a smaller one that is still to commit (docs/sync.md). Each task keeps the number of its
-- latest change (change_seq); a deletion leaves a tombstone. pruned_seq is the highest
-- number of a pruned tombstone: a feed token at or before it may have missed a deletion.
-- epoch is drawn at random with the user's first write: a token naming another epoch comes
-- from another database (a move, a restore of another copy) and resets the client.

ALTER TABLE tasks ADD COLUMN change_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tasks_user_change ON tasks (user_id, change_seq, id);

CREATE TABLE task_feeds (
    user_id    TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    pruned_seq BIGINT NOT NULL DEFAULT 0,
    epoch      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE task_tombstones (
    user_id    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    task_id    BIGINT NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq, task_id)
);
-- Each delete prunes its user's tombstones older than the retention: this finds them
-- without reading the user's recent ones.
CREATE INDEX task_tombstones_user_deleted ON task_tombstones (user_id, deleted_at);

-- An import's key remembers how many tasks it created (task_id stays NULL).
ALTER TABLE idempotency_keys ADD COLUMN imported BIGINT NULL;

-- Applies a batch (or an import) in order, all or none, in the one statement that calls it:
-- Spin's pool never sends ROLLBACK, so no transaction may span statements. p_ops is a JSON
-- array that the core builds from validated operations (ids drawn, folds computed). A
-- failed operation raises SQLSTATE T<kind><index>: TN (not found), TV (version conflict) or
-- TK (idempotency key reused), then its 3-digit index; the statement, and everything the
-- batch did, rolls back. Rows: one per operation that is not quiet, in order.
CREATE FUNCTION task_api_batch(p_user text, p_ops jsonb, p_now bigint, p_prune_before bigint, p_key_cutoff bigint, p_epoch bigint)
RETURNS TABLE (r_ord integer, r_replayed boolean, r_imported bigint, r_id bigint, r_user_id text, r_title text, r_description text, r_completed boolean, r_priority smallint, r_due_date text, r_created_at bigint, r_updated_at bigint, r_completed_at bigint, r_version bigint)
LANGUAGE plpgsql AS $body$
DECLARE
    v_seq bigint;
    v_claimed bigint;
    i integer := -1;
    o jsonb;
    k record;
    t tasks%ROWTYPE;
BEGIN
    -- The counter first, so that every writer locks it before any task (no deadlock).
    INSERT INTO task_feeds AS f (user_id, seq, epoch) VALUES (p_user, 1, p_epoch)
    ON CONFLICT (user_id) DO UPDATE SET seq = f.seq + 1,
        pruned_seq = GREATEST(f.pruned_seq, COALESCE((SELECT max(d.seq) FROM task_tombstones d WHERE d.user_id = p_user AND d.deleted_at < p_prune_before), 0))
    RETURNING f.seq INTO v_seq;
    DELETE FROM task_tombstones d WHERE d.user_id = p_user AND d.deleted_at < p_prune_before;
    FOR o IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
        i := i + 1;
        IF o->>'op' = 'import_key' THEN
            INSERT INTO idempotency_keys AS ik (user_id, key, fingerprint, task_id, created_at, imported)
            VALUES (p_user, o->>'key', o->>'fingerprint', NULL, p_now, (o->>'count')::bigint)
            ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, task_id = NULL, created_at = excluded.created_at, imported = excluded.imported
            WHERE ik.created_at <= p_key_cutoff
            RETURNING 1 INTO v_claimed;
            IF v_claimed IS NULL THEN
                SELECT ik.fingerprint, ik.task_id, ik.imported INTO k FROM idempotency_keys ik WHERE ik.user_id = p_user AND ik.key = o->>'key';
                IF k.fingerprint IS DISTINCT FROM o->>'fingerprint' OR k.task_id IS NOT NULL THEN
                    RAISE EXCEPTION 'idempotency key reused' USING ERRCODE = 'TK' || lpad(i::text, 3, '0');
                END IF;
                r_ord := -1; r_replayed := true; r_imported := k.imported;
                RETURN NEXT;
                RETURN;
            END IF;
        ELSIF o->>'op' = 'create' THEN
            v_claimed := NULL;
            IF o ? 'key' THEN
                INSERT INTO idempotency_keys AS ik (user_id, key, fingerprint, task_id, created_at)
                VALUES (p_user, o->>'key', o->>'fingerprint', (o->>'id')::bigint, p_now)
                ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, task_id = excluded.task_id, created_at = excluded.created_at, imported = NULL
                WHERE ik.created_at <= p_key_cutoff
                RETURNING ik.task_id INTO v_claimed;
                IF v_claimed IS NULL THEN
                    -- A live key: replay the first create, as it was, if its task remains.
                    SELECT ik.fingerprint, ik.task_id, ik.created_at INTO k FROM idempotency_keys ik WHERE ik.user_id = p_user AND ik.key = o->>'key';
                    IF k.fingerprint IS DISTINCT FROM o->>'fingerprint' OR k.task_id IS NULL THEN
                        RAISE EXCEPTION 'idempotency key reused' USING ERRCODE = 'TK' || lpad(i::text, 3, '0');
                    END IF;
                    IF NOT EXISTS (SELECT 1 FROM tasks x WHERE x.id = k.task_id AND x.user_id = p_user) THEN
                        RAISE EXCEPTION 'not found' USING ERRCODE = 'TN' || lpad(i::text, 3, '0');
                    END IF;
                    r_ord := i; r_replayed := true; r_imported := NULL;
                    r_id := k.task_id; r_user_id := p_user; r_title := o->>'title'; r_description := o->>'description';
                    r_completed := (o->>'completed')::boolean; r_priority := (o->>'priority')::smallint; r_due_date := o->>'due_date';
                    r_created_at := k.created_at; r_updated_at := k.created_at;
                    r_completed_at := CASE WHEN (o->>'completed')::boolean THEN k.created_at END; r_version := 1;
                    RETURN NEXT;
                    CONTINUE;
                END IF;
            END IF;
            INSERT INTO tasks (id, user_id, title, title_fold, description, description_fold, completed, priority, due_date, created_at, updated_at, completed_at, version, change_seq)
            OVERRIDING SYSTEM VALUE
            VALUES ((o->>'id')::bigint, p_user, o->>'title', o->>'title_fold', o->>'description', o->>'description_fold', (o->>'completed')::boolean, (o->>'priority')::smallint, o->>'due_date', (o->>'created_at')::bigint, (o->>'updated_at')::bigint, (o->>'completed_at')::bigint, 1, v_seq)
            RETURNING * INTO t;
            IF o ? 'quiet' THEN
                CONTINUE;
            END IF;
            r_ord := i; r_replayed := false; r_imported := NULL;
            r_id := t.id; r_user_id := t.user_id; r_title := t.title; r_description := t.description; r_completed := t.completed;
            r_priority := t.priority; r_due_date := t.due_date; r_created_at := t.created_at; r_updated_at := t.updated_at;
            r_completed_at := t.completed_at; r_version := t.version;
            RETURN NEXT;
        ELSIF o->>'op' = 'update' THEN
            UPDATE tasks x SET
                title = CASE WHEN o ? 'title' THEN o->>'title' ELSE x.title END,
                title_fold = CASE WHEN o ? 'title' THEN o->>'title_fold' ELSE x.title_fold END,
                description = CASE WHEN o ? 'description' THEN o->>'description' ELSE x.description END,
                description_fold = CASE WHEN o ? 'description' THEN o->>'description_fold' ELSE x.description_fold END,
                priority = CASE WHEN o ? 'priority' THEN (o->>'priority')::smallint ELSE x.priority END,
                due_date = CASE WHEN o ? 'due_date' THEN o->>'due_date' ELSE x.due_date END,
                completed = CASE WHEN o ? 'completed' THEN (o->>'completed')::boolean ELSE x.completed END,
                completed_at = CASE WHEN NOT o ? 'completed' THEN x.completed_at
                    WHEN (o->>'completed')::boolean THEN CASE WHEN x.completed THEN x.completed_at ELSE p_now END
                    ELSE NULL END,
                updated_at = GREATEST(x.updated_at, p_now),
                version = x.version + 1,
                change_seq = v_seq
            WHERE x.id = (o->>'id')::bigint AND x.user_id = p_user AND (NOT o ? 'expected' OR x.version = (o->>'expected')::bigint)
            RETURNING * INTO t;
            IF NOT FOUND THEN
                IF o ? 'expected' AND EXISTS (SELECT 1 FROM tasks x WHERE x.id = (o->>'id')::bigint AND x.user_id = p_user) THEN
                    RAISE EXCEPTION 'version conflict' USING ERRCODE = 'TV' || lpad(i::text, 3, '0');
                END IF;
                RAISE EXCEPTION 'not found' USING ERRCODE = 'TN' || lpad(i::text, 3, '0');
            END IF;
            r_ord := i; r_replayed := false; r_imported := NULL;
            r_id := t.id; r_user_id := t.user_id; r_title := t.title; r_description := t.description; r_completed := t.completed;
            r_priority := t.priority; r_due_date := t.due_date; r_created_at := t.created_at; r_updated_at := t.updated_at;
            r_completed_at := t.completed_at; r_version := t.version;
            RETURN NEXT;
        ELSIF o->>'op' = 'delete' THEN
            DELETE FROM tasks x
            WHERE x.id = (o->>'id')::bigint AND x.user_id = p_user AND (NOT o ? 'expected' OR x.version = (o->>'expected')::bigint)
            RETURNING * INTO t;
            IF NOT FOUND THEN
                IF o ? 'expected' AND EXISTS (SELECT 1 FROM tasks x WHERE x.id = (o->>'id')::bigint AND x.user_id = p_user) THEN
                    RAISE EXCEPTION 'version conflict' USING ERRCODE = 'TV' || lpad(i::text, 3, '0');
                END IF;
                RAISE EXCEPTION 'not found' USING ERRCODE = 'TN' || lpad(i::text, 3, '0');
            END IF;
            INSERT INTO task_tombstones (user_id, seq, task_id, deleted_at) VALUES (p_user, v_seq, t.id, p_now)
            ON CONFLICT DO NOTHING;
            r_ord := i; r_replayed := false; r_imported := NULL;
            r_id := t.id; r_user_id := NULL; r_title := NULL; r_description := NULL; r_completed := NULL;
            r_priority := NULL; r_due_date := NULL; r_created_at := NULL; r_updated_at := NULL;
            r_completed_at := NULL; r_version := NULL;
            RETURN NEXT;
        ELSE
            RAISE EXCEPTION 'unknown batch operation %', o->>'op';
        END IF;
    END LOOP;
END
$body$;
