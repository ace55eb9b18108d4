//! Builds the real component, serves it with the test host and checks the health routes
//! over HTTP: on SQLite, on PostgreSQL (`TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, in a fresh schema dropped afterwards) and on
//! an unreachable PostgreSQL. `SKIP_DB_TESTS=1` skips the PostgreSQL test with a message.

use spin_test_host::{Host, HostBuilder, RunningHost};
use task_api_test_kit::{TempDir, postgres::PgSchema, postgres::database_url, temp_dir};

const SECRET: &str = "a smoke-test secret that is at least thirty-two bytes long";

/// The host for the built component, with only the given variables (the developer's
/// `SPIN_VARIABLE_*` environment is ignored) and its data in `dir`.
fn host(dir: &TempDir, variables: &[(&str, &str)]) -> HostBuilder {
    Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variables(variables.iter().copied())
        .sqlite_dir(dir.path())
}

async fn serve(builder: HostBuilder) -> (Host, RunningHost) {
    let host = builder.build().expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    (host, running)
}

fn json(response: &spin_test_host::Response) -> serde_json::Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", response.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_on_sqlite() {
    let dir = temp_dir("spin-test-host-smoke");
    let (_host, running) = serve(host(&dir, &[])).await;

    let health = running.get("/health").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(json(&health)["status"], "ok");
    assert!(
        health
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        health.headers
    );

    let ready = running.get("/health/ready").await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert!(
        dir.path().join("sqlite_db.db").is_file(),
        "the default database lives in the sqlite dir"
    );

    // Concurrent requests, each in its own instance with its own SQLite connection.
    let addr = running.addr;
    let requests: Vec<_> = (0..32)
        .map(|i| {
            let path = if i % 2 == 0 {
                "/health"
            } else {
                "/health/ready"
            };
            tokio::spawn(spin_test_host::client::get(addr, path))
        })
        .collect();
    for request in requests {
        let response = request.await.unwrap().unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_on_postgres() {
    // A fresh schema, so the migrations that readiness applies touch nothing else.
    let Some(schema) = PgSchema::create("spin_smoke").await else {
        return;
    };
    let (admin, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let component_url = schema.component_url();
    let database_host = schema.database_host();

    let dir = temp_dir("spin-test-host-smoke");
    let (_host, running) = serve(host(
        &dir,
        &[
            ("database_url", component_url.as_str()),
            ("database_host", database_host.as_str()),
        ],
    ))
    .await;
    let ready = running.get("/health/ready").await.unwrap();
    let health = running.get("/health").await.unwrap();
    running.shutdown().await;
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema.name()],
        )
        .await
        .unwrap()
        .get(0);

    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(tables > 0, "readiness migrated the fresh schema");
    assert!(
        !dir.path().join("sqlite_db.db").exists(),
        "SQLite is not used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_is_not_ready_but_healthy() {
    let dir = temp_dir("spin-test-host-smoke");
    // Allowed by allowed_outbound_hosts, but nothing listens on port 1.
    let (_host, running) = serve(host(
        &dir,
        &[
            ("database_url", "postgres://postgres@127.0.0.1:1/test"),
            ("database_host", "127.0.0.1:1"),
        ],
    ))
    .await;
    let ready = running.get("/health/ready").await.unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    let health = running.get("/health").await.unwrap();
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(json(&health)["status"], "ok");
    running.shutdown().await;

    // Not allowed by allowed_outbound_hosts (database_host keeps its default): the host
    // refuses the connection like Spin. Retrying cannot help, so this is the 500
    // configuration problem naming database_host, not a 503 that tells probes to wait.
    let (_host, running) = serve(host(
        &dir,
        &[("database_url", "postgres://postgres@127.0.0.1:1/test")],
    ))
    .await;
    let ready = running.get("/health/ready").await.unwrap();
    assert_eq!(ready.status, 500, "{}", ready.text());
    assert_eq!(json(&ready)["code"], "configuration_error");
    assert!(
        json(&ready)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("database_host")),
        "{}",
        ready.text()
    );
    running.shutdown().await;
}

#[test]
fn a_missing_required_variable_is_named() {
    let dir = temp_dir("spin-test-host-required");
    let manifest = dir.path().join("spin.toml");
    std::fs::write(
        &manifest,
        r#"spin_manifest_version = 2

[application]
name = "required-variable"

[variables]
api_key = { required = true, secret = true }

[[trigger.http]]
route = "/..."
component = "app"

[component.app]
source = "app.wasm"
"#,
    )
    .unwrap();
    let err = Host::builder()
        .manifest(&manifest)
        .process_env(false)
        .build()
        .err()
        .expect("api_key is required");
    let text = format!("{err:?}");
    assert!(
        text.contains("api_key") && text.contains("SPIN_VARIABLE_API_KEY"),
        "{text}"
    );
}

#[test]
fn spin_toml_declares_every_setting_with_the_cores_default() {
    // A setting the manifest does not pass to the component reads as missing, whatever the
    // operator sets: `spin.toml` must list every one of the core's settings.
    let sources = spin_test_host::manifest::VariableSources::default();
    let manifest = spin_test_host::workspace_root().join("spin.toml");
    let app = spin_test_host::manifest::load(&manifest, &sources).expect("spin.toml loads");
    for setting in task_api_core::SETTINGS {
        let value = app.variables.get(setting.name);
        assert!(value.is_some(), "spin.toml does not pass {}", setting.name);
        if let Some(default) = setting.default {
            assert_eq!(
                value.map(String::as_str),
                Some(default),
                "the default of {}",
                setting.name
            );
        }
    }
}
