//! Builds the real component, serves it with the test host and checks the health routes
//! over HTTP: on SQLite, on PostgreSQL (`TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, in a fresh schema dropped afterwards) and on
//! an unreachable PostgreSQL. `SKIP_DB_TESTS=1` skips the PostgreSQL test with a message.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use spin_test_host::{Host, HostBuilder, RunningHost};

const SECRET: &str = "a smoke-test secret that is at least thirty-two bytes long";
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "spin-test-host-smoke-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

/// `host:port` of a `postgres://` URL, as `database_host` wants it.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_on_sqlite() {
    let dir = TempDir::new();
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
    let url =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let admin = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) if std::env::var("SKIP_DB_TESTS").is_ok_and(|v| v == "1") => {
            eprintln!("skipping the PostgreSQL smoke test (SKIP_DB_TESTS=1): {e}");
            return;
        }
        Err(e) => panic!(
            "{e}\nStart PostgreSQL (or set TEST_DATABASE_URL), or set SKIP_DB_TESTS=1 to skip this test."
        ),
    };
    // A fresh schema, so the migrations that readiness applies touch nothing else.
    let schema = format!("spin_smoke_{}_{}", std::process::id(), rand_suffix());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let component_url = format!("{url}{sep}options=-csearch_path%3D{schema}");

    let dir = TempDir::new();
    let (_host, running) = serve(host(
        &dir,
        &[
            ("database_url", component_url.as_str()),
            ("database_host", host_port(&url).as_str()),
        ],
    ))
    .await;
    let ready = running.get("/health/ready").await.unwrap();
    let health = running.get("/health").await.unwrap();
    running.shutdown().await;
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();

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
    let dir = TempDir::new();
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
    // refuses the connection like Spin, which the component reports as unavailable too.
    let (_host, running) = serve(host(
        &dir,
        &[("database_url", "postgres://postgres@127.0.0.1:1/test")],
    ))
    .await;
    let ready = running.get("/health/ready").await.unwrap();
    assert_eq!(ready.status, 503, "{}", ready.text());
    running.shutdown().await;
}

#[test]
fn a_missing_required_variable_is_named() {
    let err = Host::builder()
        .wasm("/nonexistent.wasm")
        .process_env(false)
        .build()
        .err()
        .expect("jwt_secret is required");
    let text = format!("{err:?}");
    assert!(
        text.contains("jwt_secret") && text.contains("SPIN_VARIABLE_JWT_SECRET"),
        "{text}"
    );
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) % 1_000_000
}
