//! The core's SQL executor over Spin's databases: outbound PostgreSQL
//! (`spin:postgres/postgres@3.0.0`) and the built-in SQLite (`fermyon:spin/sqlite@2.0.0`),
//! the oldest interfaces that do the job, so one artifact runs on Spin 3.x and 4.x hosts.
//! Without the `sqlite` feature the SQLite half is left out, and the component imports no
//! SQLite interface (for hosts that have none).
//!
//! This module only executes statements and converts values; the statements themselves
//! live in `task_api_core::sql`. The connection is opened on first use, so `/health` never
//! touches the database. Each backend's errors are mapped to the core's kinds in one
//! function.

use std::cell::OnceCell;

use spin_sdk::pg3;
#[cfg(feature = "sqlite")]
use spin_sdk::sqlite;
use task_api_core::sql::{DbError, Executor, SqlValue, driver_text};

use crate::settings::Database;

/// The database of one request.
pub struct SpinDb {
    database: Database,
    connection: OnceCell<Result<Connection, DbError>>,
}

enum Connection {
    Postgres(pg3::Connection),
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Connection),
}

impl SpinDb {
    /// A database that connects when first used.
    pub fn new(database: Database) -> Self {
        SpinDb {
            database,
            connection: OnceCell::new(),
        }
    }

    fn connection(&self) -> Result<&Connection, DbError> {
        self.connection
            .get_or_init(|| match &self.database {
                Database::Postgres(url) => pg3::Connection::open(url)
                    .map(Connection::Postgres)
                    .map_err(pg_error),
                #[cfg(feature = "sqlite")]
                Database::Sqlite => sqlite::Connection::open("default")
                    .map(Connection::Sqlite)
                    .map_err(sqlite_error),
                Database::Invalid => Err(DbError::Other("database_url is not usable".into())),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Executor for SpinDb {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        match self.connection()? {
            Connection::Postgres(c) => {
                let rows = c.query(sql, &pg_params(params)).map_err(pg_error)?;
                Ok(rows
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(from_pg).collect())
                    .collect())
            }
            #[cfg(feature = "sqlite")]
            Connection::Sqlite(c) => {
                let result = c
                    .execute(sql, &sqlite_params(params))
                    .map_err(sqlite_error)?;
                Ok(result
                    .rows
                    .into_iter()
                    .map(|row| row.values.into_iter().map(from_sqlite).collect())
                    .collect())
            }
        }
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        match self.connection()? {
            Connection::Postgres(c) => c.execute(sql, &pg_params(params)).map_err(pg_error),
            #[cfg(feature = "sqlite")]
            Connection::Sqlite(c) => {
                c.execute(sql, &sqlite_params(params))
                    .map_err(sqlite_error)?;
                // Spin's SQLite interface returns no count: ask the same connection.
                let changes = c.execute("SELECT changes()", &[]).map_err(sqlite_error)?;
                Ok(match changes.rows.first().and_then(|r| r.values.first()) {
                    Some(sqlite::Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
                    _ => 0,
                })
            }
        }
    }
}

fn pg_params(params: &[SqlValue]) -> Vec<pg3::ParameterValue> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Null => pg3::ParameterValue::DbNull,
            SqlValue::Int(n) => pg3::ParameterValue::Int64(*n),
            SqlValue::Text(s) => pg3::ParameterValue::Str(s.clone()),
            SqlValue::Bool(b) => pg3::ParameterValue::Boolean(*b),
        })
        .collect()
}

fn from_pg(v: pg3::DbValue) -> SqlValue {
    match v {
        pg3::DbValue::Boolean(b) => SqlValue::Bool(b),
        pg3::DbValue::Int8(n) => SqlValue::Int(n.into()),
        pg3::DbValue::Int16(n) => SqlValue::Int(n.into()),
        pg3::DbValue::Int32(n) => SqlValue::Int(n.into()),
        pg3::DbValue::Int64(n) => SqlValue::Int(n),
        pg3::DbValue::Str(s) => SqlValue::Text(s),
        // The schema uses only booleans, integers and text; anything else is a decoding
        // problem the store reports.
        _ => SqlValue::Null,
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_params(params: &[SqlValue]) -> Vec<sqlite::Value> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Null => sqlite::Value::Null,
            SqlValue::Int(n) => sqlite::Value::Integer(*n),
            SqlValue::Text(s) => sqlite::Value::Text(s.clone()),
            SqlValue::Bool(b) => sqlite::Value::Integer(i64::from(*b)),
        })
        .collect()
}

#[cfg(feature = "sqlite")]
fn from_sqlite(v: sqlite::Value) -> SqlValue {
    match v {
        sqlite::Value::Integer(n) => SqlValue::Int(n),
        sqlite::Value::Text(s) => SqlValue::Text(s),
        sqlite::Value::Null | sqlite::Value::Real(_) | sqlite::Value::Blob(_) => SqlValue::Null,
    }
}

/// Spin reports a failed Postgres query as text: the host's rendering of the driver error
/// (an anyhow chain, sometimes with a backtrace), which carries the SQLSTATE as
/// `SqlState(Exxxxx)`. This is the one place that reads it; the core classifies it. Every
/// text goes through [`driver_text`] first: one line, no credentials.
fn pg_error(e: pg3::PgError) -> DbError {
    match e {
        pg3::PgError::ConnectionFailed(m) => DbError::from_connect_failure(&m),
        pg3::PgError::QueryFailed(m) => {
            // `SqlState(E23505)` for a code tokio-postgres knows, `SqlState(Other("TN004"))`
            // for one it does not (the core's own, raised by `task_api_batch`).
            let state = ["SqlState(E", "SqlState(Other(\""]
                .iter()
                .find_map(|p| m.find(p).map(|i| &m[i + p.len()..]))
                .and_then(|s| s.get(..5))
                .unwrap_or("");
            let text = driver_text(&m);
            match state {
                // No SQLSTATE: the connection broke under the query.
                "" if m.contains("Closed") || m.contains("kind: Io") => DbError::Unavailable(text),
                "" => DbError::Other(text),
                state => DbError::from_sqlstate(state, text),
            }
        }
        other => DbError::Other(driver_text(&format!("{other:?}"))),
    }
}

#[cfg(feature = "sqlite")]
fn sqlite_error(e: sqlite::Error) -> DbError {
    match e {
        sqlite::Error::Io(m) => {
            let text = driver_text(&m);
            if m.contains("UNIQUE constraint failed") {
                DbError::UniqueViolation(text)
            } else if m.contains("CHECK constraint failed") {
                DbError::CheckViolation(text)
            } else if m.contains("no such table") || m.contains("no such column") {
                DbError::SchemaMissing(text)
            } else if m.contains("database is locked") || m.contains("busy") {
                DbError::Unavailable(text)
            } else {
                DbError::Other(text)
            }
        }
        sqlite::Error::DatabaseFull => DbError::Unavailable("the SQLite database is full".into()),
        other => DbError::Other(driver_text(&format!("{other:?}"))),
    }
}
