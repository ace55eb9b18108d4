//! The shared store suite against [`SqlStore`] on SQLite (`rusqlite`, bundled), one fresh
//! database file per test, plus the migration tests. The executor and the files are in
//! `support/sqlite.rs`, shared with `model.rs`.
#![cfg(feature = "sql")]

use task_api_test_kit::store_suite;
mod support;

use support::sqlite::{SqliteExecutor, fresh, temp_db};
use task_api_core::sql::{
    DbError, Dialect, Executor, MIGRATIONS, SqlStore, migrate, schema_is_current,
};
use task_api_core::{Completion, TaskStore};

task_api_test_kit::store_suite_tests!(fresh);
task_api_test_kit::sync_suite_tests!(fresh);
task_api_test_kit::account_suite_tests!(fresh);

/// The HTTP API over a fresh database, for the hostile requests.
fn fresh_app() -> Option<(
    task_api_test_kit::TempDir,
    support::InProcess<SqlStore<SqliteExecutor>>,
)> {
    let (db, store) = pollster::block_on(fresh())?;
    Some((db, support::hostile::app(store)))
}

support::hostile::hostile_tests!(fresh_app);

#[tokio::test]
async fn migrations_apply_once() {
    let (_dir, db) = temp_db();
    let exec = SqliteExecutor::open(&db);
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
    let (_dir, db) = temp_db();
    let path = db.clone();
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
    let (_dir, db) = temp_db();
    let exec = SqliteExecutor::open(&db);
    migrate(&exec, Dialect::Sqlite).await.unwrap();
    let path = db.clone();
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
    let (_dir, db) = temp_db();
    let store = SqlStore::new(SqliteExecutor::open(&db), Dialect::Sqlite).with_auto_migrate(true);
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
    let (_dir, db) = temp_db();
    let store = SqlStore::new(SqliteExecutor::open(&db), Dialect::Sqlite).with_auto_migrate(true);
    store.ping().await.unwrap();
    assert!(
        schema_is_current(store.executor(), Dialect::Sqlite)
            .await
            .unwrap()
    );
}
