-- Create then delete one task, as before (the delete's cost is this script's minus a create's).
\set id random(1, 9007199254740991)
INSERT INTO tasks (id, user_id, title, title_fold, description, description_fold, completed, priority, due_date, created_at, updated_at, completed_at, version) OVERRIDING SYSTEM VALUE VALUES (:id, 'u' || :client_id, 'Gone', 'gone', NULL, NULL, false, 2, NULL, 1795256130123, 1795256130123, NULL, 1);
WITH guarded AS (DELETE FROM tasks WHERE id = :id AND user_id = 'u' || :client_id RETURNING id) SELECT g.* FROM (SELECT 1) AS one LEFT JOIN (SELECT true AS present, guarded.* FROM guarded) AS g ON true;
