//! The core's [`Executor`] over one `rusqlite` connection, handed to one request at a time.
//!
//! SQLite takes one writer at a time, and the SQLite store's idempotent create is a
//! `BEGIN IMMEDIATE … COMMIT` across statements, so a request needs the connection to
//! itself from its first statement to its last. Requests queue for it on an async mutex
//! (waiting costs no thread, unlike SQLite's busy timeout), and a request that ends with a
//! transaction still open (its future was dropped between `BEGIN` and `COMMIT`) has it
//! rolled back before the connection serves the next one.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode};
use task_api_core::sql::{DbError, Executor, SqlValue, driver_text};
use tokio::sync::OwnedMutexGuard;

/// The database file, behind one connection.
#[derive(Clone)]
pub struct SqliteDb {
    // The inner std mutex makes the connection `Sync`, so that a request's future, which
    // borrows it, is `Send`; only the request holding the outer guard ever locks it.
    connection: Arc<tokio::sync::Mutex<Mutex<Connection>>>,
}

impl SqliteDb {
    /// Opens (or creates) the database at `path`, in write-ahead-log mode.
    pub fn open(path: &Path) -> Result<SqliteDb, String> {
        let connection = Connection::open(path)
            .map_err(|e| format!("cannot open the SQLite database {}: {e}", path.display()))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| format!("cannot switch the SQLite database to WAL: {e}"))?;
        Ok(SqliteDb {
            connection: Arc::new(tokio::sync::Mutex::new(Mutex::new(connection))),
        })
    }

    /// The connection, for one request.
    pub async fn checkout(&self) -> SqliteConnection {
        SqliteConnection {
            guard: self.connection.clone().lock_owned().await,
        }
    }
}

/// The connection while one request holds it.
pub struct SqliteConnection {
    guard: OwnedMutexGuard<Mutex<Connection>>,
}

impl SqliteConnection {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T, DbError>) -> Result<T, DbError> {
        let connection = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        f(&connection)
    }
}

impl Drop for SqliteConnection {
    fn drop(&mut self) {
        let connection = self.guard.lock().unwrap_or_else(|p| p.into_inner());
        if !connection.is_autocommit() {
            let _ = connection.execute_batch("ROLLBACK");
        }
    }
}

fn to_sqlite(v: &SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Int(n) => Value::Integer(*n),
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Bool(b) => Value::Integer(i64::from(*b)),
    }
}

/// The one mapping from this driver's errors to the core's kinds.
fn db_error(e: rusqlite::Error) -> DbError {
    let message = driver_text(&e.to_string());
    // SQLite has no code of its own for these: SQLITE_ERROR with this text.
    if message.contains("no such table") || message.contains("no such column") {
        return DbError::SchemaMissing(message);
    }
    let rusqlite::Error::SqliteFailure(failure, _) = &e else {
        return DbError::Other(message);
    };
    match failure.code {
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen => {
            DbError::Unavailable(message)
        }
        ErrorCode::ConstraintViolation => match failure.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => DbError::UniqueViolation(message),
            rusqlite::ffi::SQLITE_CONSTRAINT_CHECK => DbError::CheckViolation(message),
            _ => DbError::Other(message),
        },
        _ => DbError::Other(message),
    }
}

fn value(v: ValueRef<'_>, i: usize) -> Result<SqlValue, DbError> {
    match v {
        ValueRef::Null => Ok(SqlValue::Null),
        ValueRef::Integer(n) => Ok(SqlValue::Int(n)),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map(SqlValue::Text)
            .map_err(|_| DbError::Other(format!("column {i} is not UTF-8"))),
        ValueRef::Real(_) | ValueRef::Blob(_) => Err(DbError::Other(format!(
            "column {i}: a type the core does not use"
        ))),
    }
}

impl Executor for SqliteConnection {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        self.with(|connection| {
            let mut statement = connection.prepare_cached(sql).map_err(db_error)?;
            let columns = statement.column_count();
            let mut rows = statement
                .query(rusqlite::params_from_iter(params.iter().map(to_sqlite)))
                .map_err(db_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_error)? {
                let values = (0..columns)
                    .map(|i| value(row.get_ref(i).map_err(db_error)?, i))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(values);
            }
            Ok(out)
        })
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.with(|connection| {
            // `prepare_cached` would keep `BEGIN` and `COMMIT` too; they are cheap to parse.
            let mut statement = connection.prepare_cached(sql).map_err(db_error)?;
            let changed = statement
                .execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))
                .map_err(db_error)?;
            Ok(changed as u64)
        })
    }
}
