//! Task ids on the SQL stores, on a real PostgreSQL and a real SQLite: a taken id is drawn
//! again (a real collision, made in the database), and a database from before migration
//! 0005, whose ids came from a sequence, keeps them.
//!
//! What every store promises about ids (unique, unordered, at most 2^53 − 1) is in the
//! store suite (`ids_are_unique_unordered_and_exact_in_javascript`).
#![cfg(feature = "sql")]

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use support::{postgres, sqlite};
use task_api_core::sql::{DbError, Dialect, Executor, MIGRATIONS, SqlStore, SqlValue, migrate};
use task_api_core::{
    Idempotency, IdempotencyKey, NewTask, TaskId, TaskStore, Timestamp, Title, UserId,
};

/// An executor that, the first time a statement inserts a task, first gives that
/// statement's id (always its first parameter) to a task of another user, so that the
/// statement then breaks the real primary key of the real database.
struct TakesTheNextId<E> {
    inner: E,
    dialect: Dialect,
    armed: AtomicBool,
    taken: Mutex<Option<i64>>,
}

impl<E: Executor> TakesTheNextId<E> {
    fn new(inner: E, dialect: Dialect) -> Self {
        TakesTheNextId {
            inner,
            dialect,
            armed: AtomicBool::new(true),
            taken: Mutex::new(None),
        }
    }

    fn taken(&self) -> Option<i64> {
        *self.taken.lock().unwrap()
    }

    async fn squat(&self, sql: &str, params: &[SqlValue]) {
        let Some(SqlValue::Int(id)) = params.first() else {
            return;
        };
        if !sql.contains("INSERT INTO tasks (id") || !self.armed.swap(false, Ordering::Relaxed) {
            return;
        }
        let squat = match self.dialect {
            Dialect::Postgres => {
                "INSERT INTO tasks (id, user_id, title, title_fold, completed, priority, \
                 created_at, updated_at) VALUES ($1, 'squatter', 'mine', 'mine', false, 2, 0, 0)"
            }
            Dialect::Sqlite => {
                "INSERT INTO tasks (id, user_id, title, title_fold, completed, priority, \
                 created_at, updated_at) VALUES (?1, 'squatter', 'mine', 'mine', 0, 2, 0, 0)"
            }
        };
        self.inner
            .execute(squat, &[SqlValue::Int(*id)])
            .await
            .expect("the squatter's task is stored");
        *self.taken.lock().unwrap() = Some(*id);
    }
}

impl<E: Executor> Executor for TakesTheNextId<E> {
    async fn query(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, DbError> {
        self.squat(sql, params).await;
        self.inner.query(sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, DbError> {
        self.squat(sql, params).await;
        self.inner.execute(sql, params).await
    }
}

fn user(id: &str) -> UserId {
    UserId::parse(id).unwrap()
}

fn new_task(title: &str) -> NewTask {
    NewTask::new(Title::parse(title).unwrap())
}

fn key(k: &str, task: &NewTask) -> Idempotency {
    Idempotency {
        key: IdempotencyKey::parse(k).unwrap(),
        fingerprint: task.fingerprint(),
    }
}

/// A create whose first id is taken succeeds with another id, and leaves the other
/// user's task (and, with a key, the key) as they should be.
async fn a_taken_id_is_drawn_again<E: Executor>(exec: E, dialect: Dialect, with_key: bool) {
    let store = SqlStore::new(TakesTheNextId::new(exec, dialect), dialect);
    let (u, squatter) = (user("u"), user("squatter"));
    let task = new_task("wanted");
    let idem = with_key.then(|| key("k", &task));
    let now = Timestamp::from_millis(1_000);
    let created = store
        .create(&u, task.clone(), idem.clone(), now)
        .await
        .expect("the create draws another id");
    let taken = store.executor().taken().expect("the first id was taken");
    assert_ne!(created.task.id.get(), taken);
    assert!(!created.replayed);

    // On SQLite the squatter's row went in on the create's own connection, inside its
    // transaction; the refused INSERT is undone alone and the next draw follows in the
    // same transaction, so the row commits with the create.
    let squatted = store.get(&squatter, TaskId::new(taken).unwrap()).await;
    assert_eq!(squatted.unwrap().title.as_str(), "mine");
    assert_eq!(
        store.get(&u, created.task.id).await,
        Ok(created.task.clone())
    );
    assert!(store.get(&u, TaskId::new(taken).unwrap()).await.is_err());

    if let Some(idem) = idem {
        let replay = store.create(&u, task, Some(idem), now).await.unwrap();
        assert!(replay.replayed);
        assert_eq!(
            replay.task.id, created.task.id,
            "the key names the task made"
        );
    }
}

#[tokio::test]
async fn postgres_draws_again_when_an_id_is_taken() {
    for with_key in [false, true] {
        let Some((_schema, store)) = postgres::fresh().await else {
            return;
        };
        a_taken_id_is_drawn_again(store.into_executor(), Dialect::Postgres, with_key).await;
    }
}

#[tokio::test]
async fn sqlite_draws_again_when_an_id_is_taken() {
    for with_key in [false, true] {
        let (_db, store) = sqlite::fresh().await.unwrap();
        a_taken_id_is_drawn_again(store.into_executor(), Dialect::Sqlite, with_key).await;
    }
}

/// Brings a database to migration 4 (the last with sequence ids) the way the runner of
/// that time did, stores two tasks with ids from the sequence, then migrates to the end:
/// both tasks keep their ids, and a new task gets a fresh one.
async fn ids_from_before_0005_are_kept<E: Executor>(exec: E, dialect: Dialect) {
    exec.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        &[],
    )
    .await
    .unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version <= 4) {
        for statement in m.statements(dialect) {
            exec.execute(&statement, &[]).await.unwrap();
        }
        let record = format!("INSERT INTO schema_migrations VALUES ({}, 0)", m.version);
        exec.execute(&record, &[]).await.unwrap();
    }
    let old_style = match dialect {
        Dialect::Postgres => {
            "INSERT INTO tasks (user_id, title, title_fold, completed, priority, created_at, \
             updated_at) VALUES ('u', 'old', 'old', false, 2, 0, 0)"
        }
        Dialect::Sqlite => {
            "INSERT INTO tasks (user_id, title, title_fold, completed, priority, created_at, \
             updated_at) VALUES ('u', 'old', 'old', 0, 2, 0, 0)"
        }
    };
    for _ in 0..2 {
        exec.execute(old_style, &[]).await.unwrap();
    }

    assert_eq!(migrate(&exec, dialect).await.unwrap(), [5, 6]);
    let store = SqlStore::new(exec, dialect);
    let u = user("u");
    for id in [1, 2] {
        let task = store.get(&u, TaskId::new(id).unwrap()).await.unwrap();
        assert_eq!(task.title.as_str(), "old");
    }
    let created = store
        .create(&u, new_task("new"), None, Timestamp::from_millis(5))
        .await
        .unwrap();
    assert!(created.task.id.get() > 2, "{}", created.task.id);
}

#[tokio::test]
async fn postgres_keeps_the_ids_of_a_database_from_before_0005() {
    let Some(schema) = postgres::PgSchema::create("t").await else {
        return;
    };
    let exec = postgres::executor(&schema).await;
    ids_from_before_0005_are_kept(exec, Dialect::Postgres).await;
    // The identity is gone: only the core names ids now.
    let exec = postgres::executor(&schema).await;
    let e = exec
        .execute(
            "INSERT INTO tasks (user_id, title, title_fold, completed, priority, created_at, \
             updated_at) VALUES ('u', 'x', 'x', false, 2, 0, 0)",
            &[],
        )
        .await;
    assert!(e.is_err(), "{e:?}");
}

#[tokio::test]
async fn sqlite_keeps_the_ids_of_a_database_from_before_0005() {
    let (_dir, db) = sqlite::temp_db();
    ids_from_before_0005_are_kept(sqlite::SqliteExecutor::open(&db), Dialect::Sqlite).await;
}
