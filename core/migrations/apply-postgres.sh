#!/bin/sh
# Applies pending PostgreSQL migrations with psql, for deployments that set
# auto_migrate=false and migrate by hand. Each file runs in one transaction together with
# the row that records its version, so a failure leaves nothing half-applied; files already
# recorded in schema_migrations are skipped, so running it twice is harmless.
#
#   DATABASE_URL=postgres://user:password@host:5432/tasks sh core/migrations/apply-postgres.sh
set -eu
: "${DATABASE_URL:?set DATABASE_URL to the database to migrate}"
dir=$(dirname "$0")/postgres
psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -c \
  'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)'
for file in "$dir"/[0-9]*.sql; do
  version=$(basename "$file" | sed 's/_.*//; s/^0*//')
  done_already=$(psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -tA -c \
    "SELECT count(*) FROM schema_migrations WHERE version = $version")
  [ "$done_already" = 0 ] || continue
  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q --single-transaction -f "$file" -c \
    "INSERT INTO schema_migrations VALUES ($version, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
  echo "applied $file"
done
