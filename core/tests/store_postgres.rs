//! The shared store suite against [`SqlStore`] on a real PostgreSQL (`tokio-postgres`), one
//! fresh schema per test, plus migration and concurrency tests.
//!
//! The executor and the schemas are in `support/postgres.rs`, shared with `model.rs`: it
//! connects to `host=127.0.0.1 port=5432 user=postgres dbname=test`, or to
//! `TEST_DATABASE_URL`. An unreachable database fails every test, unless `SKIP_DB_TESTS=1`,
//! which skips them with a message.
//!
//! The executor binds parameters as strictly as Spin's host does (an `Int` only to `int8`,
//! `Text` only to text types, `Bool` only to `boolean`), so a statement that would need
//! PostgreSQL to convert a parameter fails here as it would in the component.
#![cfg(feature = "sql")]

use task_api_test_kit::store_suite;
mod support;

use support::postgres::{PgExecutor, PgSchema, connect, database_url, executor, fresh};
use task_api_core::sql::{
    DbError, Dialect, Executor, MIGRATIONS, SqlStore, SqlValue, migrate, schema_is_current,
};
use task_api_core::{Completion, TaskStore};

task_api_test_kit::store_suite_tests!(fresh);
task_api_test_kit::sync_suite_tests!(fresh);
task_api_test_kit::account_suite_tests!(fresh);

/// The HTTP API over a fresh schema, for the hostile requests. The runtime drives the
/// connection while the requests are answered on the test's thread.
type Guard = (PgSchema, tokio::runtime::Runtime);

fn fresh_app() -> Option<(Guard, support::InProcess<SqlStore<PgExecutor>>)> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (schema, store) = runtime.block_on(fresh())?;
    Some(((schema, runtime), support::hostile::app(store)))
}

support::hostile::hostile_tests!(fresh_app);

#[tokio::test]
async fn migrations_apply_once() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let exec = executor(&schema).await;
    assert!(!schema_is_current(&exec, Dialect::Postgres).await.unwrap());
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(migrate(&exec, Dialect::Postgres).await.unwrap(), all);
    assert!(schema_is_current(&exec, Dialect::Postgres).await.unwrap());
    assert_eq!(
        migrate(&exec, Dialect::Postgres).await.unwrap(),
        Vec::<u32>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_from_four_connections_at_once_apply_once() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let mut executors = Vec::new();
    for _ in 0..4 {
        executors.push(executor(&schema).await);
    }
    let mut set = tokio::task::JoinSet::new();
    for exec in executors {
        set.spawn(async move { migrate(&exec, Dialect::Postgres).await });
    }
    let mut applied = Vec::new();
    while let Some(r) = set.join_next().await {
        applied.push(r.unwrap().unwrap());
    }
    assert_eq!(
        applied.iter().filter(|a| !a.is_empty()).count(),
        1,
        "{applied:?}"
    );
    let exec = executor(&schema).await;
    let rows = exec
        .query(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let expected: Vec<Vec<SqlValue>> = MIGRATIONS
        .iter()
        .map(|m| vec![SqlValue::Int(m.version.into()), SqlValue::Int(1)])
        .collect();
    assert_eq!(rows, expected);
    let tables = exec
        .query(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap();
    // tasks, idempotency_keys, users, login_attempts, schema_migrations, task_feeds,
    // task_tombstones
    assert_eq!(tables, [vec![SqlValue::Int(7)]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_toggles_are_atomic() {
    let Some((schema, store)) = fresh().await else {
        return;
    };
    let u = store_suite::user("toggler");
    let t = store_suite::create(&store, &u, store_suite::new_task("x"), store_suite::at(0)).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let exec = executor(&schema).await;
        let u = u.clone();
        set.spawn(async move {
            let store = SqlStore::new(exec, Dialect::Postgres);
            store
                .set_completion(&u, t.id, Completion::Toggle, None, store_suite::at(1 + i))
                .await
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    let after = store.get(&u, t.id).await.unwrap();
    assert_eq!((after.completed, after.completed_at), (false, None));
    assert_eq!(after.version.get(), 21);
    assert_eq!(after.updated_at, store_suite::at(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_same_key_creates_make_one_task() {
    let Some((schema, store)) = fresh().await else {
        return;
    };
    let u = store_suite::user("racer");
    let new = store_suite::new_task("once");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let exec = executor(&schema).await;
        let (u, new) = (u.clone(), new.clone());
        set.spawn(async move {
            let store = SqlStore::new(exec, Dialect::Postgres);
            let key = store_suite::key("same-key", &new);
            store.create(&u, new, key, store_suite::at(0)).await
        });
    }
    let mut created = Vec::new();
    while let Some(r) = set.join_next().await {
        created.push(r.unwrap().unwrap());
    }
    assert_eq!(created.iter().filter(|c| !c.replayed).count(), 1);
    assert!(created.iter().all(|c| c.task == created[0].task));
    assert_eq!(store_suite::all_tasks(&store, &u).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takeovers_of_one_expired_key_make_one_task_and_never_replay_the_old() {
    let Some((schema, store)) = fresh().await else {
        return;
    };
    let u = store_suite::user("taker");
    let old = store_suite::new_task("yesterday");
    let first = store
        .create(
            &u,
            old.clone(),
            store_suite::key("reused", &old),
            store_suite::at(0),
        )
        .await
        .unwrap();
    // A day later, eight creates with another body take the expired key over at once: the
    // ones that waited on the key's row must see the new create, not the expired one.
    let new = store_suite::new_task("today");
    let later = store_suite::at(task_api_core::IDEMPOTENCY_TTL_MS + 10);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let exec = executor(&schema).await;
        let (u, new) = (u.clone(), new.clone());
        set.spawn(async move {
            let store = SqlStore::new(exec, Dialect::Postgres);
            let key = store_suite::key("reused", &new);
            store.create(&u, new, key, later).await
        });
    }
    let mut created = Vec::new();
    while let Some(r) = set.join_next().await {
        created.push(
            r.unwrap()
                .expect("no request is refused or given the old task"),
        );
    }
    assert_eq!(created.iter().filter(|c| !c.replayed).count(), 1);
    assert!(created.iter().all(|c| c.task == created[0].task));
    assert_ne!(created[0].task.id, first.task.id);
    assert_eq!(store_suite::all_tasks(&store, &u).await.len(), 2);
}

#[tokio::test]
async fn constraint_violations_are_classified_and_statements_are_strictly_typed() {
    let Some((_schema, store)) = fresh().await else {
        return;
    };
    let exec = store.executor();
    let insert_key = "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) \
                      VALUES ('u', 'k', 'f', 0)";
    assert_eq!(exec.execute(insert_key, &[]).await, Ok(1));
    let e = exec.execute(insert_key, &[]).await;
    assert!(matches!(e, Err(DbError::UniqueViolation(_))), "{e:?}");
    let e = exec
        .execute(
            "INSERT INTO tasks (id, user_id, title, title_fold, completed, priority, created_at, updated_at) \
             VALUES (1, 'u', 'x', 'x', false, 7, 0, 0)",
            &[],
        )
        .await;
    assert!(matches!(e, Err(DbError::CheckViolation(_))), "{e:?}");
    // Like Spin's host, this executor will not bind an Int to a smallint parameter: that is
    // why every placeholder carries a cast.
    let e = exec
        .query(
            "SELECT id FROM tasks WHERE priority = $1",
            &[SqlValue::Int(1)],
        )
        .await;
    assert!(matches!(e, Err(DbError::Other(_))), "{e:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    if PgSchema::create("t").await.is_none() {
        return;
    }
    let exec = connect(None).await.unwrap();
    let store = SqlStore::new(exec, Dialect::Postgres);
    store.ping().await.unwrap();
    // Kill our own backend: the next statement finds the connection closed.
    let _ = store
        .executor()
        .execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])
        .await;
    let e = store.ping().await;
    assert!(
        matches!(e, Err(task_api_core::StoreError::Unavailable(_))),
        "{e:?}"
    );
}

#[tokio::test]
async fn auto_migrate_creates_the_schema_on_the_first_operation() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let store = SqlStore::new(executor(&schema).await, Dialect::Postgres).with_auto_migrate(true);
    let u = store_suite::user("u1");
    let created = store_suite::create(
        &store,
        &u,
        store_suite::new_task("first"),
        store_suite::at(1),
    )
    .await;
    assert_eq!(store.get(&u, created.id).await.unwrap(), created);
    assert!(
        schema_is_current(store.executor(), Dialect::Postgres)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn auto_migrate_recovers_inside_an_idempotent_create_transaction() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let store = SqlStore::new(executor(&schema).await, Dialect::Postgres).with_auto_migrate(true);
    let u = store_suite::user("u1");
    let new = store_suite::new_task("keyed");
    let key = store_suite::key("k1", &new);
    let created = store
        .create(&u, new.clone(), key.clone(), store_suite::at(1))
        .await
        .unwrap();
    let replay = store
        .create(&u, new, key, store_suite::at(2))
        .await
        .unwrap();
    assert!(replay.replayed);
    assert_eq!(replay.task.id, created.task.id);
}

#[tokio::test]
async fn without_auto_migrate_a_missing_schema_is_an_error() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let store = SqlStore::new(executor(&schema).await, Dialect::Postgres);
    let u = store_suite::user("u1");
    assert!(
        store
            .get(&u, task_api_core::TaskId::new(1).unwrap())
            .await
            .is_err()
    );
    assert!(
        !schema_is_current(store.executor(), Dialect::Postgres)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn readiness_applies_pending_migrations_when_auto_migrating() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let store = SqlStore::new(executor(&schema).await, Dialect::Postgres).with_auto_migrate(true);
    store.ping().await.unwrap();
    assert!(
        schema_is_current(store.executor(), Dialect::Postgres)
            .await
            .unwrap()
    );
}

/// The README's hand-migration script (`core/migrations/apply-postgres.sh`, psql) produces the
/// schema the runner expects, and both see the other's work.
#[tokio::test]
async fn hand_migration_script_matches_the_runner() {
    let Some(schema) = PgSchema::create("t").await else {
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/apply-postgres.sh");
    let run = || {
        let out = std::process::Command::new("sh")
            .arg(script)
            .env("DATABASE_URL", database_url())
            .env("PGOPTIONS", format!("-c search_path={}", schema.name()))
            .output()
            .expect("sh and psql are installed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    assert!(
        run().contains("applied"),
        "the first run applies every file"
    );
    assert_eq!(run(), "", "the second run applies nothing");
    let exec = executor(&schema).await;
    assert!(schema_is_current(&exec, Dialect::Postgres).await.unwrap());
    assert_eq!(
        migrate(&exec, Dialect::Postgres).await.unwrap(),
        Vec::<u32>::new()
    );
    let store = SqlStore::new(exec, Dialect::Postgres);
    let u = store_suite::user("u1");
    store_suite::create(
        &store,
        &u,
        store_suite::new_task("works"),
        store_suite::at(1),
    )
    .await;
}
