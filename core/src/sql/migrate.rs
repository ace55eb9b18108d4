//! The schema migrations and their runner.
//!
//! Migrations are numbered files under `migrations/postgres/` and `migrations/sqlite/` at the
//! repository root, embedded here. The runner records applied versions in
//! `schema_migrations(version INTEGER PRIMARY KEY, applied_at BIGINT)`. All pending
//! migrations are applied in one transaction; on PostgreSQL that transaction runs under a
//! session-level advisory lock ([`MIGRATION_LOCK`]) so concurrent instances wait for each
//! other, and on SQLite it is a `BEGIN IMMEDIATE` transaction, which holds the database's
//! write lock from its start. Either way the second instance finds the versions recorded
//! by the first and applies nothing.

use super::{DbError, Dialect, Executor, SqlValue};

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
    /// start with `--` are dropped, and a statement ends at each line ending with `;`.
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
];

fn split_statements(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(end) = trimmed.strip_suffix(';') {
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

fn now_millis_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => {
            "INSERT INTO schema_migrations (version, applied_at) VALUES \
             ($1::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
        }
        Dialect::Sqlite => {
            "INSERT INTO schema_migrations (version, applied_at) VALUES \
             (?1, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))"
        }
    }
}

async fn applied_versions<E: Executor>(executor: &E) -> Result<Vec<u32>, DbError> {
    let rows = executor
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| match row.first() {
            Some(SqlValue::Int(v)) => u32::try_from(*v)
                .map_err(|_| DbError::Other(format!("schema_migrations holds version {v}"))),
            _ => Err(DbError::Other("undecodable schema_migrations row".into())),
        })
        .collect()
}

/// Applies every pending migration, returning the versions applied now (empty when the
/// schema was current). Safe to run concurrently from several connections: one applies,
/// the others wait and then apply nothing. `executor` must be one connection.
pub async fn migrate<E: Executor>(executor: &E, dialect: Dialect) -> Result<Vec<u32>, DbError> {
    if dialect == Dialect::Postgres {
        executor
            .execute(
                "SELECT pg_advisory_lock($1::bigint)",
                &[SqlValue::Int(MIGRATION_LOCK)],
            )
            .await?;
    }
    let begin = match dialect {
        Dialect::Postgres => "BEGIN",
        Dialect::Sqlite => "BEGIN IMMEDIATE",
    };
    let result = match executor.execute(begin, &[]).await {
        Ok(_) => match apply_pending(executor, dialect).await {
            Ok(applied) => executor.execute("COMMIT", &[]).await.map(|_| applied),
            Err(e) => {
                let _ = executor.execute("ROLLBACK", &[]).await;
                Err(e)
            }
        },
        Err(e) => Err(e),
    };
    if dialect == Dialect::Postgres {
        let unlocked = executor
            .execute(
                "SELECT pg_advisory_unlock($1::bigint)",
                &[SqlValue::Int(MIGRATION_LOCK)],
            )
            .await;
        if let (Ok(_), Err(e)) = (&result, unlocked) {
            return Err(e);
        }
    }
    result
}

async fn apply_pending<E: Executor>(executor: &E, dialect: Dialect) -> Result<Vec<u32>, DbError> {
    executor.execute(CREATE_SCHEMA_MIGRATIONS, &[]).await?;
    let done = applied_versions(executor).await?;
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        for statement in m.statements(dialect) {
            executor.execute(&statement, &[]).await.map_err(|e| {
                DbError::Other(format!("migration {} ({}) failed: {e}", m.version, m.name))
            })?;
        }
        executor
            .execute(
                now_millis_sql(dialect),
                &[SqlValue::Int(i64::from(m.version))],
            )
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
    match applied_versions(executor).await {
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
            for d in [Dialect::Postgres, Dialect::Sqlite] {
                let statements = m.statements(d);
                assert!(!statements.is_empty());
                assert!(statements.iter().all(|s| !s.contains(';')), "{m:?}");
            }
        }
    }
}
