#!/usr/bin/env bash
# The change feed's cost on PostgreSQL's write path, measured side by side in one run:
# each pgbench run interleaves the statement as the store sent it before the feed
# (*_before.sql) and as it sends it now (*_after.sql), at equal weights, on the same
# connections, so both meet the same machine at the same moment. pgbench prints each
# script's latency and rate.
#
#   bash tests/feed-cost/run.sh            # 4 clients, 20 s per pair
#   CLIENTS=8 SECS=30 bash tests/feed-cost/run.sh
#
# Uses a schema of its own (feedcost) in the database of PGDATABASE (default test) and
# drops it at the end. The SQL is hand-copied from the store's statements (the forms
# core/src/store/sql/statements.rs builds), with literals where the store binds values.
set -euo pipefail
cd "$(dirname "$0")"
export PGHOST="${PGHOST:-127.0.0.1}" PGDATABASE="${PGDATABASE:-test}" PGUSER="${PGUSER:-postgres}"
clients="${CLIENTS:-4}" secs="${SECS:-20}"
psql -q -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS feedcost CASCADE" -c "CREATE SCHEMA feedcost"
trap 'psql -q -c "DROP SCHEMA IF EXISTS feedcost CASCADE"' EXIT
export PGOPTIONS="-c search_path=feedcost"
for f in ../../core/migrations/postgres/*.sql; do
    psql -q -v ON_ERROR_STOP=1 -f "$f"
done
# 2,000 tasks for each client's user, ids client * 100000 + n (the update scripts' rows).
psql -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO tasks (id, user_id, title, title_fold, completed, priority, created_at, updated_at, version)
  SELECT c * 100000 + n, 'u' || c, 'Task ' || n, 'task ' || n, false, 2, 1795256130123, 1795256130123, 1
  FROM generate_series(0, $clients - 1) AS c, generate_series(1, 2000) AS n;
  ANALYZE;"
for op in create update delete; do
    echo "== $op: before (script 1) and after (script 2), $clients clients, $secs s"
    pgbench -n -M prepared -c "$clients" -j 2 -T "$secs" \
        -f "${op}_before.sql" -f "${op}_after.sql" 2>&1 \
        | grep -E "^(SQL script|tps| - (weight|[0-9]+ transactions)|latency average)| - latency average"
done
