//! The two builds of the component and what each imports: the default one (SQLite or
//! PostgreSQL) and the PostgreSQL-only one (`--no-default-features`, for Spin hosts without
//! SQLite such as Akamai Functions), read from the built `.wasm` files with wasmtime. The
//! PostgreSQL-only build is also served from `spin.postgres.toml` on a real PostgreSQL
//! (`TEST_DATABASE_URL`, see `task_api_test_kit::postgres`; `SKIP_DB_TESTS=1` skips that part),
//! and its manifest is checked to stay spin.toml but for the build.

use std::collections::BTreeSet;
use std::path::Path;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use spin_test_host::{Host, HostBuilder, Response, RunningHost, workspace_root};
use task_api_test_kit::{TempDir, postgres::PgSchema, temp_dir};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel};

const SECRET: &str = "an imports-test secret of at least thirty-two bytes";

/// The SQLite interface of the default build.
const SQLITE: &str = "fermyon:spin/sqlite@2.0.0";

/// The names of everything the component at `wasm` imports (interfaces such as
/// `fermyon:spin/sqlite@2.0.0`), as wasmtime reads its type.
fn imports(wasm: &Path) -> BTreeSet<String> {
    let mut config = Config::new();
    // Only the types are read: no need to optimize the code (this test host's Cranelift is
    // a debug build, slow enough without it).
    config
        .wasm_component_model(true)
        .cranelift_opt_level(OptLevel::None);
    let engine = Engine::new(&config).expect("an engine");
    let component = Component::from_file(&engine, wasm)
        .unwrap_or_else(|e| panic!("compiling {}: {e:?}", wasm.display()));
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn the_default_build_imports_sqlite_and_the_postgres_only_build_imports_no_sqlite() {
    let (default, postgres_only) = std::thread::scope(|s| {
        let default = s.spawn(|| imports(&spin_test_host::build_component()));
        let postgres_only = imports(&spin_test_host::build_postgres_only_component());
        (
            default.join().expect("reading the default build"),
            postgres_only,
        )
    });
    eprintln!("default build imports: {default:#?}");
    eprintln!("PostgreSQL-only build imports: {postgres_only:#?}");

    assert!(default.contains(SQLITE), "{default:#?}");
    let with_sqlite: Vec<&String> = postgres_only
        .iter()
        .filter(|name| name.contains("sqlite"))
        .collect();
    assert!(
        with_sqlite.is_empty(),
        "the PostgreSQL-only build imports {with_sqlite:?}"
    );
    // The feature removes the SQLite interface and nothing else.
    let dropped: Vec<&String> = default.difference(&postgres_only).collect();
    assert_eq!(dropped, [SQLITE], "imports only the default build has");
    let added: Vec<&String> = postgres_only.difference(&default).collect();
    assert!(
        added.is_empty(),
        "imports only the PostgreSQL-only build has: {added:?}"
    );
    for both in [
        "spin:postgres/postgres@3.0.0",
        "fermyon:spin/key-value@2.0.0",
        "fermyon:spin/variables@2.0.0",
        "wasi:http/outgoing-handler@0.2.",
    ] {
        assert!(
            postgres_only.iter().any(|name| name.starts_with(both)),
            "{both}: {postgres_only:#?}"
        );
    }
    // Key-value is Spin's own interface: no wasi:keyvalue (of which Akamai Functions
    // supports only part) in either build.
    assert!(
        !default.iter().any(|name| name.starts_with("wasi:keyvalue")),
        "{default:#?}"
    );
}

/// A manifest as TOML, without the three fields in which spin.postgres.toml differs from
/// spin.toml; returns them too.
fn manifest_without_build(path: &Path) -> (toml::Table, [Option<toml::Value>; 3]) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let component = table
        .get_mut("component")
        .and_then(|c| c.get_mut("task-api"))
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("{} has no [component.task-api]", path.display()));
    let source = component.remove("source");
    let sqlite = component.remove("sqlite_databases");
    let command = component
        .get_mut("build")
        .and_then(toml::Value::as_table_mut)
        .and_then(|b| b.remove("command"));
    (table, [source, sqlite, command])
}

#[test]
fn spin_postgres_toml_is_spin_toml_but_for_the_build_and_sqlite() {
    let root = workspace_root();
    let (default, [_, default_sqlite, _]) = manifest_without_build(&root.join("spin.toml"));
    let (postgres, [source, sqlite, command]) =
        manifest_without_build(&root.join("spin.postgres.toml"));
    assert!(
        default_sqlite.is_some(),
        "spin.toml declares sqlite_databases"
    );
    assert_eq!(sqlite, None, "spin.postgres.toml declares sqlite_databases");
    assert_eq!(
        default, postgres,
        "spin.postgres.toml must equal spin.toml except for the component's source, build \
         command and sqlite_databases: copy the change to it"
    );
    assert_eq!(
        source.as_ref().and_then(toml::Value::as_str),
        Some("target/nosqlite/wasm32-wasip2/release/task_api_spin.wasm")
    );
    let command = command
        .as_ref()
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for part in [
        "cargo build -p task-api-spin --target wasm32-wasip2 --release",
        "--no-default-features",
        "--target-dir target/nosqlite",
    ] {
        assert!(command.contains(part), "{command:?} lacks {part:?}");
    }
    // README.md's Fermyon Cloud recipe replaces these two entries with literal hosts (the
    // cloud expands no variables there).
    assert_eq!(
        default["component"]["task-api"]["allowed_outbound_hosts"],
        toml::Value::Array(vec![
            "postgres://{{ database_host }}".into(),
            "{{ jwks_host }}".into(),
        ]),
        "README.md's Deploying section quotes spin.toml's allowed_outbound_hosts"
    );
    // The test host reads it as Spin would: no SQLite database for the component.
    let app = spin_test_host::manifest::load(
        &root.join("spin.postgres.toml"),
        &spin_test_host::manifest::VariableSources::default(),
    )
    .expect("spin.postgres.toml loads");
    assert!(
        app.sqlite_databases.is_empty(),
        "{:?}",
        app.sqlite_databases
    );
    assert_eq!(app.source, root.join(source.unwrap().as_str().unwrap()));
}

/// The test host serving the PostgreSQL-only build from spin.postgres.toml, with only the
/// given variables (not the developer's environment) and its files in `dir`.
fn postgres_only_host(dir: &TempDir, variables: &[(&str, String)]) -> HostBuilder {
    Host::builder()
        .manifest(workspace_root().join("spin.postgres.toml"))
        .wasm(spin_test_host::build_postgres_only_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variables(variables.iter().map(|(k, v)| (*k, v.clone())))
        .sqlite_dir(dir.path())
}

async fn serve(builder: HostBuilder) -> (Host, RunningHost) {
    let host = builder.build().expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    (host, running)
}

fn token(sub: &str) -> String {
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(Claims::create(Duration::from_hours(1)).with_subject(sub))
        .expect("a token")
}

async fn call(running: &RunningHost, method: &str, path: &str, body: Option<Value>) -> Response {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {}", token("ann")));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    running
        .send(request.body(body).unwrap())
        .await
        .expect("the host answers")
}

fn json(response: &Response) -> Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_only_build_needs_database_url_and_serves_tasks_on_postgres() {
    let dir = temp_dir("imports-nosqlite");

    // No database_url: task routes are a configuration problem naming it; /health is fine.
    let (_host, running) = serve(postgres_only_host(&dir, &[])).await;
    for (method, path, body) in [
        ("GET", "/api/tasks", None),
        ("POST", "/api/tasks", Some(json!({"title": "never stored"}))),
    ] {
        let r = call(&running, method, path, body).await;
        assert_eq!(r.status, 500, "{method} {path}: {}", r.text());
        let problem = json(&r);
        assert_eq!(problem["code"], "configuration_error", "{problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("database_url"), "{detail}");
        assert!(detail.contains("needs PostgreSQL"), "{detail}");
    }
    let health = running.get("/health").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    running.shutdown().await;

    // A real PostgreSQL: create a task, then read it back.
    let Some(schema) = PgSchema::create("imports_nosqlite").await else {
        return;
    };
    let (_host, running) = serve(postgres_only_host(
        &dir,
        &[
            ("database_url", schema.component_url()),
            ("database_host", schema.database_host()),
        ],
    ))
    .await;
    let created = call(
        &running,
        "POST",
        "/api/tasks",
        Some(json!({"title": "stored in PostgreSQL"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = json(&created)["data"]["id"].as_i64().expect("an id");
    let got = call(&running, "GET", &format!("/api/tasks/{id}"), None).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(json(&got)["data"]["title"], "stored in PostgreSQL");
    assert_eq!(running.strict_violations(), 0);
    running.shutdown().await;
    assert!(
        !dir.path().join("sqlite_db.db").exists(),
        "the PostgreSQL-only build touched no SQLite file"
    );
}
