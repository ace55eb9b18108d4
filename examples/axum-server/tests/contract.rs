//! The contract suite (`task_api_test_kit::contract`, the same functions that run in process
//! in `core/tests/contract.rs` and against the served `.wasm`) over real HTTP against this
//! server: on SQLite, and on PostgreSQL (`TEST_DATABASE_URL`; `SKIP_DB_TESTS=1` skips those
//! with a message).
//!
//! Every test gets a server of its own, on a runtime of its own, with the settings it asks
//! for and fresh storage (a new SQLite file, or a new schema), since the suite's users and
//! their tasks must start empty.

use task_api_test_kit::postgres::PgSchema;
use task_api_test_kit::{Http, SECRET, TempDir, temp_dir};

/// Which database the server uses.
#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

/// What must outlive the test's requests, dropped in this order: the signal that stops the
/// server, the runtime serving it, then its storage.
struct Served {
    _stop: tokio::sync::oneshot::Sender<()>,
    _runtime: tokio::runtime::Runtime,
    _schema: Option<PgSchema>,
    _dir: TempDir,
}

/// A fresh server on `db` with `jwt_secret` = [`SECRET`] and `settings`; `None` when
/// PostgreSQL is unreachable and skipping is allowed.
fn serve(db: Db, settings: &[(&str, &str)]) -> Option<Http> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = temp_dir("axum-contract");
    let mut values: Vec<(String, String)> = vec![
        ("jwt_secret".into(), SECRET.into()),
        (
            "sqlite_path".into(),
            dir.path().join("tasks.sqlite").display().to_string(),
        ),
    ];
    let schema = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let schema = runtime.block_on(PgSchema::create("axumcontract"))?;
            values.push(("database_url".into(), schema.component_url()));
            Some(schema)
        }
    };
    values.extend(settings.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let lookup = |name: &str| {
        values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let settings = task_api_axum::Settings::from_lookup(lookup).expect("the settings");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Bound before the server starts: requests sent while it migrates wait in the backlog.
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a port");
    let addr = listener.local_addr().expect("the address");
    runtime.spawn(task_api_axum::serve_until(listener, settings, async {
        let _ = stopped.await;
    }));
    Some(Http::new(&format!("http://{addr}")).keeping(Served {
        _stop: stop,
        _runtime: runtime,
        _schema: schema,
        _dir: dir,
    }))
}

mod on_sqlite {
    fn start(settings: &[(&str, &str)]) -> task_api_test_kit::Http {
        super::serve(super::Db::Sqlite, settings).expect("SQLite is built in")
    }

    task_api_test_kit::contract_tests!(start);
}

mod on_postgres {
    fn start(settings: &[(&str, &str)]) -> task_api_test_kit::Http {
        super::serve(super::Db::Postgres, settings).expect("PostgreSQL answered a moment ago")
    }

    use task_api_test_kit::postgres::reachable;

    task_api_test_kit::contract_tests!(start, if reachable);
}
