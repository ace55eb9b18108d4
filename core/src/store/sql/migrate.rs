//! The schema migrations and their runner.
//!
//! Migrations are numbered files under `core/migrations/postgres/` and
//! `core/migrations/sqlite/`, embedded here (inside the package, so that the published crate
//! builds). The runner records applied versions in
//! `schema_migrations(version INTEGER PRIMARY KEY, applied_at BIGINT)`. All pending
//! migrations are applied in one transaction, and the second of two instances migrating at
//! once finds the versions recorded by the first and applies nothing.
//!
//! - **PostgreSQL: one statement.** Every migration goes into a single `DO` block that
//!   takes a transaction-level advisory lock ([`MIGRATION_LOCK`]), creates
//!   `schema_migrations` if needed, and applies each version not yet recorded. A statement
//!   is its own transaction, so nothing can be left open between statements: Spin pools
//!   PostgreSQL connections and never sends `ROLLBACK` when one comes back, so a request
//!   that died between a `BEGIN` and its `COMMIT` would hand its open transaction (and a
//!   session lock) to the next request. The block records what it applied in a session
//!   setting (`task_api.migrated`), read back by one more query.
//! - **SQLite: `BEGIN IMMEDIATE`**, which holds the database's write lock from its start,
//!   then the statements one by one (Spin's SQLite connection lives for one request, and
//!   closing it rolls back). After a commit the database is switched to write-ahead logging
//!   (`PRAGMA journal_mode = WAL`), which is a property of the file: Spin opens it with
//!   SQLite's defaults (a rollback journal), under which every write syncs the database and
//!   its journal, and readers wait for writers.

use super::{DbError, Dialect, Executor, SqlValue, query_guarded};

/// The key of the PostgreSQL advisory lock held while migrating (ASCII "taskmigr").
pub const MIGRATION_LOCK: i64 = 0x7461_736b_6d69_6772;

/// One numbered migration, in both dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The version recorded in `schema_migrations`.
    pub version: u32,
    /// A short name, from the file name.
    pub name: &'static str,
    /// The PostgreSQL script.
    pub postgres: &'static str,
    /// The SQLite script.
    pub sqlite: &'static str,
}

impl Migration {
    /// The script for `dialect`.
    pub fn script(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Postgres => self.postgres,
            Dialect::Sqlite => self.sqlite,
        }
    }

    /// The statements of the script for `dialect`, one per call to the executor: lines that
    /// start with `--` are dropped, and a statement ends at each line ending with `;`, except
    /// inside a function body quoted with `$body$`.
    ///
    /// ```
    /// use task_api_core::sql::{Dialect, MIGRATIONS};
    /// let statements = MIGRATIONS[0].statements(Dialect::Sqlite);
    /// assert!(statements[0].starts_with("CREATE TABLE tasks"));
    /// assert!(statements.iter().all(|s| !s.trim_end().ends_with(';')));
    /// ```
    pub fn statements(&self, dialect: Dialect) -> Vec<String> {
        split_statements(self.script(dialect))
    }
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        postgres: include_str!("../../../migrations/postgres/0001_init.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "users",
        postgres: include_str!("../../../migrations/postgres/0002_users.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0002_users.sql"),
    },
    Migration {
        version: 3,
        name: "fewer_indexes",
        postgres: include_str!("../../../migrations/postgres/0003_fewer_indexes.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0003_fewer_indexes.sql"),
    },
    Migration {
        version: 4,
        name: "login_attempts",
        postgres: include_str!("../../../migrations/postgres/0004_login_attempts.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0004_login_attempts.sql"),
    },
    Migration {
        version: 5,
        name: "random_ids",
        postgres: include_str!("../../../migrations/postgres/0005_random_ids.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0005_random_ids.sql"),
    },
    Migration {
        version: 6,
        name: "change_feed",
        postgres: include_str!("../../../migrations/postgres/0006_change_feed.sql"),
        sqlite: include_str!("../../../migrations/sqlite/0006_change_feed.sql"),
    },
];

/// The quote tag of function bodies in migrations: inside it, lines ending with `;` do not
/// end the statement.
const BODY_QUOTE: &str = "$body$";

fn split_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut in_body = false;
    for line in script.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        if line.matches(BODY_QUOTE).count() % 2 == 1 {
            in_body = !in_body;
        }
        let trimmed = line.trim_end();
        if in_body {
            current.push_str(line);
            current.push('\n');
        } else if let Some(end) = trimmed.strip_suffix(';') {
            current.push_str(end);
            if !current.trim().is_empty() {
                statements.push(current.trim().to_owned());
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    // Text after the last `;` (blank lines) is no statement; anything else would be one
    // that was never terminated.
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
     (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)";

const SQLITE_RECORD: &str = "INSERT INTO schema_migrations (version, applied_at) VALUES \
     (?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))";

async fn applied_versions<E: Executor>(
    executor: &E,
    dialect: Dialect,
) -> Result<Vec<u32>, DbError> {
    let rows = query_guarded(
        executor,
        dialect,
        "SELECT version FROM schema_migrations",
        &[],
    )
    .await?;
    let mut versions = rows
        .iter()
        .map(|row| match row.first() {
            Some(SqlValue::Int(v)) => u32::try_from(*v)
                .map_err(|_| DbError::Other(format!("schema_migrations holds version {v}"))),
            _ => Err(DbError::Other("undecodable schema_migrations row".into())),
        })
        .collect::<Result<Vec<u32>, DbError>>()?;
    versions.sort_unstable();
    Ok(versions)
}

/// Applies every pending migration, returning the versions applied now (empty when the
/// schema was current). Safe to run concurrently from several connections: one applies,
/// the others wait and then apply nothing. `executor` must be one connection.
pub async fn migrate<E: Executor>(executor: &E, dialect: Dialect) -> Result<Vec<u32>, DbError> {
    match dialect {
        Dialect::Postgres => migrate_postgres(executor).await,
        Dialect::Sqlite => migrate_sqlite(executor).await,
    }
}

/// The one `DO` block that applies every pending migration on PostgreSQL.
///
/// Each migration's statements run in the block as they are (PL/pgSQL runs DDL), so a
/// script must not contain the block's own quote tag `$migrate$`; the test
/// `the_postgres_block_quotes_every_script_safely` checks that.
pub fn postgres_migration_block() -> String {
    let mut block = format!(
        "DO $migrate$\nDECLARE migrated_now text := '';\nBEGIN\n\
         PERFORM pg_advisory_xact_lock({MIGRATION_LOCK});\n\
         {CREATE_SCHEMA_MIGRATIONS};\n"
    );
    for m in MIGRATIONS {
        let v = m.version;
        block.push_str(&format!(
            "IF NOT EXISTS (SELECT FROM schema_migrations WHERE version = {v}) THEN\n"
        ));
        for statement in m.statements(Dialect::Postgres) {
            block.push_str(&statement);
            block.push_str(";\n");
        }
        block.push_str(&format!(
            "INSERT INTO schema_migrations (version, applied_at) VALUES \
             ({v}, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);\n\
             migrated_now := migrated_now || ',{v}';\nEND IF;\n"
        ));
    }
    block.push_str("PERFORM set_config('task_api.migrated', migrated_now, false);\nEND\n$migrate$");
    block
}

async fn migrate_postgres<E: Executor>(executor: &E) -> Result<Vec<u32>, DbError> {
    executor
        .execute(&postgres_migration_block(), &[])
        .await
        .map_err(|e| match e {
            DbError::Other(m) => DbError::Other(format!("migrating failed: {m}")),
            other => other,
        })?;
    let rows = executor
        .query(
            "SELECT coalesce(current_setting('task_api.migrated', true), '')",
            &[],
        )
        .await?;
    let applied = match rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Text(list)) => list,
        _ => return Err(DbError::Other("undecodable task_api.migrated".into())),
    };
    applied
        .split(',')
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .map_err(|_| DbError::Other(format!("task_api.migrated holds {v:?}")))
        })
        .collect()
}

async fn migrate_sqlite<E: Executor>(executor: &E) -> Result<Vec<u32>, DbError> {
    executor.execute("BEGIN IMMEDIATE", &[]).await?;
    let applied = match apply_pending_sqlite(executor).await {
        Ok(applied) => executor.execute("COMMIT", &[]).await.map(|_| applied),
        Err(e) => {
            let _ = executor.execute("ROLLBACK", &[]).await;
            Err(e)
        }
    }?;
    // Outside the transaction (SQLite cannot change the journal mode inside one). A host
    // whose SQLite is not a local file (Fermyon Cloud's) may refuse it; the schema is
    // current either way, so a refusal is no failure.
    let _ = executor.query("PRAGMA journal_mode = WAL", &[]).await;
    Ok(applied)
}

async fn apply_pending_sqlite<E: Executor>(executor: &E) -> Result<Vec<u32>, DbError> {
    executor.execute(CREATE_SCHEMA_MIGRATIONS, &[]).await?;
    let done = applied_versions(executor, Dialect::Sqlite).await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        for statement in m.statements(Dialect::Sqlite) {
            executor.execute(&statement, &[]).await.map_err(|e| {
                DbError::Other(format!("migration {} ({}) failed: {e}", m.version, m.name))
            })?;
        }
        executor
            .execute(SQLITE_RECORD, &[SqlValue::Int(i64::from(m.version))])
            .await?;
        applied.push(m.version);
    }
    Ok(applied)
}

/// Whether every migration this crate knows has been applied: one query in the usual case
/// (a second only when `schema_migrations` cannot be read, to tell a fresh database from a
/// failure). A database with versions newer than this crate's is current for it.
pub async fn schema_is_current<E: Executor>(
    executor: &E,
    dialect: Dialect,
) -> Result<bool, DbError> {
    match applied_versions(executor, dialect).await {
        Ok(done) => Ok(MIGRATIONS.iter().all(|m| done.contains(&m.version))),
        Err(e @ DbError::Unavailable(_)) => Err(e),
        Err(e) => {
            let exists = match dialect {
                Dialect::Postgres => {
                    "SELECT count(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
                }
                Dialect::Sqlite => {
                    "SELECT count(*) FROM sqlite_master \
                     WHERE type = 'table' AND name = 'schema_migrations'"
                }
            };
            let rows = executor.query(exists, &[]).await?;
            match rows.first().and_then(|r| r.first()) {
                Some(SqlValue::Int(0)) => Ok(false),
                _ => Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_lines_ending_with_semicolons() {
        let s =
            "-- a comment;\nCREATE TABLE a (\n  x INT -- why;\n);\n\nCREATE INDEX i ON a (x);\n";
        // A trailing `--` comment on a code line is kept (the database ignores it), so a
        // line like `x INT -- why;` would end a statement: the rule is about lines.
        assert_eq!(
            split_statements(s),
            [
                "CREATE TABLE a (\n  x INT -- why",
                ")",
                "CREATE INDEX i ON a (x)"
            ]
        );
    }

    #[test]
    fn every_migration_has_both_dialects_and_rising_versions() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            // A migration may have nothing to do in one dialect (0003 is SQLite's alone),
            // but it has something to do somewhere.
            assert!(
                !m.statements(Dialect::Sqlite).is_empty()
                    || !m.statements(Dialect::Postgres).is_empty()
            );
            for d in [Dialect::Postgres, Dialect::Sqlite] {
                // A `;` only inside a function body (the runner keeps it whole) or a
                // trigger written on one line: there it separates their own statements.
                let statements = m.statements(d);
                assert!(
                    statements.iter().all(|s| !s.contains(';')
                        || s.matches(BODY_QUOTE).count() == 2
                        || (s.starts_with("CREATE TRIGGER") && !s.contains('\n'))),
                    "{m:?}"
                );
            }
        }
    }

    #[test]
    fn the_postgres_block_quotes_every_script_safely() {
        let block = postgres_migration_block();
        assert!(block.starts_with("DO $migrate$"));
        assert_eq!(
            block.matches("$migrate$").count(),
            2,
            "no script may hold the tag"
        );
        for m in MIGRATIONS {
            assert!(block.contains(&format!("WHERE version = {}) THEN", m.version)));
        }
    }
}
