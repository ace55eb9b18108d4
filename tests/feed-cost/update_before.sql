-- Update of a task by id (one of the rows seeded per client), as before.
\set n random(1, 2000)
WITH guarded AS (UPDATE tasks SET completed = NOT completed, completed_at = CASE WHEN completed THEN NULL ELSE 1795256130124 END, updated_at = GREATEST(updated_at, 1795256130124), version = version + 1 WHERE id = :client_id * 100000 + :n AND user_id = 'u' || :client_id RETURNING id, user_id, title, description, completed, priority, due_date, created_at, updated_at, completed_at, version) SELECT g.* FROM (SELECT 1) AS one LEFT JOIN (SELECT true AS present, guarded.* FROM guarded) AS g ON true;
