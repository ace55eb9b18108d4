//! The shared store suite against [`SqlStore`] on SQLite (`rusqlite`, bundled), one fresh
//! database file per test, plus the migration tests.
#![cfg(feature = "sql")]

mod store_suite;
mod support;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::ErrorCode;
use rusqlite::types::{Value, ValueRef};
use task_api_core::sql::{
    DbError, Dialect, Executor, MIGRATIONS, SqlStore, SqlValue, migrate, schema_is_current,
};
use task_api_core::{Completion, TaskStore};

/// An [`Executor`] over one `rusqlite` connection, mapping errors as the component does.
struct SqliteExecutor {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteExecutor {
    fn open(path: &Path) -> Self {
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

/// A fresh database file, removed when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "task-api-test-{}-{nanos}-{}.sqlite",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        TempDb(std::env::temp_dir().join(name))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

async fn fresh() -> Option<(TempDb, SqlStore<SqliteExecutor>)> {
    let db = TempDb::new();
    let exec = SqliteExecutor::open(&db.0);
    migrate(&exec, Dialect::Sqlite).await.unwrap();
    Some((db, SqlStore::new(exec, Dialect::Sqlite)))
}

store_suite::suite_tests!(fresh);
store_suite::account_suite_tests!(fresh);

/// The HTTP API over a fresh database, for the hostile requests.
fn fresh_app() -> Option<(TempDb, support::TestApp<SqlStore<SqliteExecutor>>)> {
    let (db, store) = pollster::block_on(fresh())?;
    Some((db, support::hostile::app(store)))
}

support::hostile::hostile_tests!(fresh_app);

#[tokio::test]
async fn migrations_apply_once() {
    let db = TempDb::new();
    let exec = SqliteExecutor::open(&db.0);
    assert!(!schema_is_current(&exec, Dialect::Sqlite).await.unwrap());
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate(&exec, Dialect::Sqlite).await.unwrap(), all);
    assert!(schema_is_current(&exec, Dialect::Sqlite).await.unwrap());
    assert_eq!(
        migrate(&exec, Dialect::Sqlite).await.unwrap(),
        Vec::<u32>::new()
    );
    let rows = exec
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), all.len());
}

#[tokio::test]
async fn migrations_from_several_connections_apply_once() {
    let db = TempDb::new();
    let path = db.0.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let exec = SqliteExecutor::open(&path);
                pollster::block_on(migrate(&exec, Dialect::Sqlite)).unwrap()
            })
        })
        .collect();
    let applied: Vec<Vec<u32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "{applied:?}"
    );
    let exec = SqliteExecutor::open(&path);
    assert!(schema_is_current(&exec, Dialect::Sqlite).await.unwrap());
}

#[tokio::test]
async fn constraint_violations_are_classified() {
    let Some((_db, store)) = fresh().await else {
        return;
    };
    let exec = store.executor();
    let e = exec
        .execute(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) VALUES ('u', 'k', 'f', 0)",
            &[],
        )
        .await;
    assert_eq!(e, Ok(1));
    let e = exec
        .execute(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) VALUES ('u', 'k', 'f', 0)",
            &[],
        )
        .await;
    assert!(matches!(e, Err(DbError::UniqueViolation(_))), "{e:?}");
    let e = exec
        .execute(
            "INSERT INTO tasks (user_id, title, title_fold, completed, priority, created_at, updated_at) \
             VALUES ('u', 'x', 'x', 0, 7, 0, 0)",
            &[],
        )
        .await;
    assert!(matches!(e, Err(DbError::CheckViolation(_))), "{e:?}");
}

#[tokio::test]
async fn concurrent_idempotent_creates_make_one_task() {
    let db = TempDb::new();
    let exec = SqliteExecutor::open(&db.0);
    migrate(&exec, Dialect::Sqlite).await.unwrap();
    let path = db.0.clone();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = SqlStore::new(SqliteExecutor::open(&path), Dialect::Sqlite);
                let u = store_suite::user("racer");
                let new = store_suite::new_task("once");
                pollster::block_on(store.create(
                    &u,
                    new.clone(),
                    store_suite::key("same-key", &new),
                    store_suite::at(0),
                ))
                .unwrap()
            })
        })
        .collect();
    let created: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(created.iter().filter(|c| !c.replayed).count(), 1);
    assert!(created.iter().all(|c| c.task.id == created[0].task.id));
    let store = SqlStore::new(exec, Dialect::Sqlite);
    let u = store_suite::user("racer");
    assert_eq!(store_suite::all_tasks(&store, &u).await.len(), 1);
    // Toggling from several connections is atomic too: an even count changes nothing.
    let id = created[0].task.id;
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let store = SqlStore::new(SqliteExecutor::open(&path), Dialect::Sqlite);
                let u = store_suite::user("racer");
                pollster::block_on(store.set_completion(
                    &u,
                    id,
                    Completion::Toggle,
                    None,
                    store_suite::at(1),
                ))
                .unwrap();
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let t = store.get(&u, id).await.unwrap();
    assert_eq!((t.completed, t.version.get()), (false, 7));
}

#[tokio::test]
async fn auto_migrate_creates_the_schema_on_the_first_operation() {
    let db = TempDb::new();
    let store = SqlStore::new(SqliteExecutor::open(&db.0), Dialect::Sqlite).with_auto_migrate(true);
    let u = store_suite::user("u1");
    let new = store_suite::new_task("keyed");
    let created = store
        .create(
            &u,
            new.clone(),
            store_suite::key("k1", &new),
            store_suite::at(1),
        )
        .await
        .unwrap();
    assert_eq!(store.get(&u, created.task.id).await.unwrap(), created.task);
    assert!(
        schema_is_current(store.executor(), Dialect::Sqlite)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn readiness_applies_pending_migrations_when_auto_migrating() {
    let db = TempDb::new();
    let store = SqlStore::new(SqliteExecutor::open(&db.0), Dialect::Sqlite).with_auto_migrate(true);
    store.ping().await.unwrap();
    assert!(
        schema_is_current(store.executor(), Dialect::Sqlite)
            .await
            .unwrap()
    );
}
