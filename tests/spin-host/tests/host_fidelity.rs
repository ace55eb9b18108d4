//! Checks that the test host behaves like Spin where the difference would hide a bug:
//! strict zero-row mode and TLS by `sslmode` for PostgreSQL (through the host's own pg code,
//! [`PgProbe`], no component needed), guest output forwarded write by write, and the
//! `x-host-calls` counts (with the real component).
//!
//! The PostgreSQL tests use `TEST_DATABASE_URL` like the others and skip only with
//! `SKIP_DB_TESTS=1`.

use spin_test_host::{
    HOST_CALLS_HEADER, Host, HostCalls, LogCapture, PgError, PgProbe, STRICT_ZERO_ROWS,
};
use task_api_test_kit::{
    postgres::database_url, postgres::skipping_db, postgres::with_sslmode, temp_dir,
};

const SECRET: &str = "a host-fidelity secret that is at least thirty-two bytes long";

/// A probe allowed to reach the test database (whatever host and port it is on).
fn probe(strict: bool) -> PgProbe {
    let host = task_api_test_kit::postgres::host_port(&database_url());
    PgProbe::new(&[format!("postgres://{host}")], strict).expect("a valid allow-list")
}

/// Whether the test database is reachable in plain text; panics when it is not, unless
/// skipping is allowed.
async fn database_reachable(probe: &PgProbe) -> bool {
    match probe.open(&database_url()).await {
        Ok(_) => true,
        Err(e) if skipping_db() => {
            eprintln!("skipping a PostgreSQL test (SKIP_DB_TESTS=1): {e}");
            false
        }
        Err(e) => panic!(
            "PostgreSQL at {} is unreachable: {e}\nStart it (or set TEST_DATABASE_URL), or set SKIP_DB_TESTS=1.",
            database_url()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_a_query_with_no_rows() {
    let strict = probe(true);
    if !database_reachable(&strict).await {
        return;
    }
    let connection = strict.open(&database_url()).await.unwrap();

    // No rows: in Spin 4.0.x this `query` never returns; strict mode makes it an error.
    let err = connection
        .query("SELECT 1::int4 AS one WHERE $1 = 'yes'", &["no"])
        .await
        .expect_err("a query with no rows fails in strict mode");
    assert_eq!(err, PgError::QueryFailed(STRICT_ZERO_ROWS.to_owned()));
    assert!(STRICT_ZERO_ROWS.contains("spinframework/spin#3671"));
    assert_eq!(strict.strict_violations(), 1);

    // Rows: answered as usual, and not counted.
    let rows = connection
        .query("SELECT 1::int4 AS one WHERE $1 = 'yes'", &["yes"])
        .await
        .unwrap();
    assert_eq!(rows, [[Some("1".to_owned())]]);
    assert_eq!(strict.strict_violations(), 1);

    // `execute` is not affected, whatever it matches.
    assert_eq!(
        connection
            .execute("SELECT 1 WHERE $1 = 'yes'", &["no"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(strict.strict_violations(), 1);

    // A second zero-row query is a second violation.
    assert!(connection.query("SELECT 1 WHERE false", &[]).await.is_err());
    assert_eq!(strict.strict_violations(), 2);

    // Lenient: an empty row set, as Spin answers before 4.0 and after the fix.
    let lenient = probe(false);
    let connection = lenient.open(&database_url()).await.unwrap();
    let rows = connection.query("SELECT 1 WHERE false", &[]).await.unwrap();
    assert!(rows.is_empty());
    assert_eq!(lenient.strict_violations(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_follows_sslmode_like_spin() {
    let probe = probe(false);
    if !database_reachable(&probe).await {
        return;
    }
    let plain_url = database_url();
    assert!(plain_url.contains("sslmode=disable"), "{plain_url}");

    // sslmode=disable: plain text.
    let plain = probe.open(&plain_url).await.unwrap();
    let ssl_used = plain
        .query(
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        ssl_used,
        [[Some("false".to_owned())]],
        "no TLS with sslmode=disable"
    );
    let server_ssl = plain.query("SHOW ssl", &[]).await.unwrap();
    let server_ssl = server_ssl[0][0].as_deref() == Some("on");
    drop(plain);

    for mode in [None, Some("prefer"), Some("require")] {
        let url = with_sslmode(&plain_url, mode);
        let result = probe.open(&url).await;
        if server_ssl {
            // The server offers TLS: the handshake runs, the certificate is verified (a
            // self-signed one fails, even for `require`), and there is no plain-text retry.
            let Err(PgError::ConnectionFailed(text)) = result else {
                panic!(
                    "sslmode={mode:?}: expected connection-failed (certificate not trusted), got {:?}",
                    result.map(|_| ())
                );
            };
            // Spin: `ConnectionFailed(format!("{e:?}"))` of an anyhow error wrapping
            // deadpool's PoolError::Backend(tokio_postgres::Error of kind Tls).
            assert!(
                text.starts_with(
                    "Error occurred while creating a new object: error performing TLS handshake"
                ),
                "sslmode={mode:?}: {text}"
            );
            assert!(
                text.contains("\n\nCaused by:\n"),
                "sslmode={mode:?}: {text}"
            );
            assert!(
                text.contains("certificate verify failed"),
                "sslmode={mode:?}: {text}"
            );
        } else if mode == Some("require") {
            let Err(PgError::ConnectionFailed(text)) = result else {
                panic!("sslmode=require on a server without TLS must fail");
            };
            assert!(text.contains("server does not support TLS"), "{text}");
        } else {
            // `prefer` on a server that answers `N`: plain text, as tokio-postgres does.
            assert!(result.is_ok(), "sslmode={mode:?}: {:?}", result.err());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_calls_and_guest_writes_are_counted_per_request() {
    let dir = temp_dir("spin-test-host-fidelity");
    let capture = LogCapture::new();
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .sqlite_dir(dir.path())
        .log_sink(&capture)
        .count_host_calls(true)
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.unwrap();

    let mut counted = Vec::new();
    for path in ["/health", "/health/ready", "/health/ready", "/health"] {
        let response = running.get(path).await.unwrap();
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let raw = response
            .header(HOST_CALLS_HEADER)
            .unwrap_or_else(|| panic!("{path}: no {HOST_CALLS_HEADER} in {:?}", response.headers))
            .to_owned();
        let keys: Vec<&str> = raw
            .split("; ")
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            keys,
            [
                "variables",
                "stderr",
                "stdout",
                "pg_query",
                "pg_execute",
                "pg_connect",
                "sqlite_execute",
                "sqlite_open",
                "kv",
                "http"
            ],
            "{raw}"
        );
        let calls = response.host_calls().expect("a well-formed header");
        assert_eq!(calls.to_string(), raw);
        counted.push((path, calls));
    }
    running.shutdown().await;

    for (path, calls) in &counted {
        // Every request reads its settings and logs one line; none uses PostgreSQL.
        assert!(calls.variables > 0, "{path}: {calls}");
        assert!(calls.stderr > 0, "{path}: {calls}");
        assert_eq!(
            (calls.pg_query, calls.pg_execute, calls.pg_connect),
            (0, 0, 0),
            "{path}: {calls}"
        );
    }
    let ready = counted[1].1;
    assert!(
        ready.sqlite_open > 0 && ready.sqlite_execute > 0,
        "readiness on SQLite opens the database and runs a statement: {ready}"
    );

    // The sink got exactly the writes the headers counted, and each request's log line.
    let writes: u64 = counted
        .iter()
        .map(|(_, c)| u64::from(c.stderr + c.stdout))
        .sum();
    assert_eq!(capture.writes(), writes, "{}", capture.text());
    let text = capture.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("\"route\"")).collect();
    assert_eq!(lines.len(), counted.len(), "{text}");
    // Each line came whole here because the component writes each log line in one
    // write; the host does not join writes (see guest_output's unit tests for a line
    // written in pieces).
    assert!(writes >= counted.len() as u64, "{writes} writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_host_calls_header_unless_asked() {
    let dir = temp_dir("spin-test-host-fidelity");
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .sqlite_dir(dir.path())
        .log_sink(LogCapture::new())
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.unwrap();
    let response = running.get("/health").await.unwrap();
    running.shutdown().await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header(HOST_CALLS_HEADER), None);
    assert_eq!(response.host_calls(), None::<HostCalls>);
}
