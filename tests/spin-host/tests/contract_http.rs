//! The contract suite (`task_api_test_kit::contract`, the very functions that run in
//! process in `core/tests/contract.rs`) over real HTTP against the served
//! `task_api_spin.wasm`: on SQLite, and on PostgreSQL (`TEST_DATABASE_URL`; `SKIP_DB_TESTS=1`
//! skips those with a message).
//!
//! Every test gets a host of its own with the settings it asks for and fresh storage (a new
//! SQLite directory, or a new schema), since the suite's users and their tasks must start
//! empty. The component is built once per process and its compilation is cached on disk,
//! so a host costs milliseconds.

use spin_test_host::{Host, RunningHost};
use task_api_test_kit::postgres::PgSchema;
use task_api_test_kit::{Http, SECRET, TempDir, temp_dir};

/// Which database the component uses.
#[derive(Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

/// What must live as long as a served component, dropped in this order: the server, the
/// host, the runtime serving it, then its storage.
struct Served {
    _running: RunningHost,
    _host: Host,
    _runtime: tokio::runtime::Runtime,
    _schema: Option<PgSchema>,
    _dir: TempDir,
}

/// Serves the component on `db` with `jwt_secret` = [`SECRET`] and `settings`; `None` when
/// PostgreSQL is unreachable and skipping is allowed.
fn serve(db: Db, settings: &[(&str, &str)]) -> Option<Http> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = temp_dir("contract-http");
    let mut variables: Vec<(String, String)> = vec![("jwt_secret".into(), SECRET.into())];
    let schema = match db {
        Db::Sqlite => None,
        Db::Postgres => {
            let schema = runtime.block_on(PgSchema::create("contract"))?;
            variables.push(("database_url".into(), schema.component_url()));
            variables.push(("database_host".into(), schema.database_host()));
            Some(schema)
        }
    };
    variables.extend(settings.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variables(variables)
        .sqlite_dir(dir.path())
        .build()
        .expect("the host starts");
    let running = runtime
        .block_on(host.serve("127.0.0.1:0"))
        .expect("the host listens");
    let base = format!("http://{}", running.addr);
    Some(Http::new(&base).keeping(Served {
        _running: running,
        _host: host,
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
