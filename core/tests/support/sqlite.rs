//! [`SqlStore`]'s SQLite executor for the tests (`rusqlite`, bundled) and a fresh database
//! file per test, shared by `store_sqlite.rs` and `model.rs`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::ErrorCode;
use rusqlite::types::{Value, ValueRef};
use task_api_core::sql::{DbError, Dialect, Executor, SqlStore, SqlValue, migrate};
use task_api_test_kit::TempDir;

/// An [`Executor`] over one `rusqlite` connection, mapping errors as the component does.
pub struct SqliteExecutor {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteExecutor {
    pub fn open(path: &Path) -> Self {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        SqliteExecutor {
            conn: Mutex::new(conn),
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

fn db_error(e: rusqlite::Error) -> DbError {
    let message = e.to_string();
    // SQLite has no code of its own for these: SQLITE_ERROR with this text.
    if message.contains("no such table") || message.contains("no such column") {
        return DbError::SchemaMissing(message);
    }
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen => {
                DbError::Unavailable(message)
            }
            ErrorCode::ConstraintViolation => match f.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => DbError::UniqueViolation(message),
                rusqlite::ffi::SQLITE_CONSTRAINT_CHECK => DbError::CheckViolation(message),
                _ => DbError::Other(message),
            },
            _ => DbError::Other(message),
        },
        _ => DbError::Other(message),
    }
}

impl Executor for SqliteExecutor {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(sql).map_err(db_error)?;
        let n = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(to_sqlite)))
            .map_err(db_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db_error)? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i).map_err(db_error)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(n) => SqlValue::Int(n),
                    ValueRef::Text(t) => SqlValue::Text(
                        String::from_utf8(t.to_vec()).map_err(|e| DbError::Other(e.to_string()))?,
                    ),
                    ValueRef::Real(_) | ValueRef::Blob(_) => {
                        return Err(DbError::Other(format!("column {i}: unsupported type")));
                    }
                });
            }
            out.push(values);
        }
        Ok(out)
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn.prepare(sql).map_err(db_error)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))
            .map_err(db_error)?;
        Ok(n as u64)
    }
}

/// A fresh database file's path, in a temporary directory that removes it (and SQLite's
/// journal files beside it) when dropped.
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = task_api_test_kit::temp_dir("task-api-sqlite");
    let path = dir.path().join("tasks.sqlite");
    (dir, path)
}

/// A migrated store in a fresh database file (`Option` like the PostgreSQL factory, but
/// never `None`: SQLite is built in).
pub async fn fresh() -> Option<(TempDir, SqlStore<SqliteExecutor>)> {
    let (dir, db) = temp_db();
    let exec = SqliteExecutor::open(&db);
    migrate(&exec, Dialect::Sqlite).await.unwrap();
    Some((dir, SqlStore::new(exec, Dialect::Sqlite)))
}
