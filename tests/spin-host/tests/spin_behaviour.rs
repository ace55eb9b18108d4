//! What real Spin does that the component must live with, through the served `.wasm`:
//!
//! - Spin 4.0.x never answers a PostgreSQL query with no rows (spinframework/spin#3671); the
//!   host's strict mode (on by default) fails such a query, so a request that would hang on
//!   Spin fails here.
//! - Spin speaks TLS to PostgreSQL unless the URL says `sslmode=disable`, and verifies the
//!   certificate, which the machine's server (Debian, self-signed) does not pass.
//! - Spin forwards each guest write to the log as it comes, so lines written in pieces
//!   interleave under load.
//! - Each variable read, log write and database statement is a host call: the budgets of the
//!   two hottest routes are checked here (and printed by the load benchmark).

use std::net::SocketAddr;

use jwt_simple::prelude::*;
use serde_json::{Value, json};
use spin_test_host::{Host, HostCalls, LogCapture, Response, RunningHost};
use task_api_test_kit::{TempDir, postgres::PgSchema, postgres::with_sslmode, temp_dir};

const SECRET: &str = "a spin-behaviour secret that is at least thirty-two bytes";

/// A served component and what must live as long as it.
struct Served {
    running: RunningHost,
    _host: Host,
    _dir: TempDir,
    _schema: Option<PgSchema>,
    log: LogCapture,
}

/// How to serve the component: on PostgreSQL (a fresh, unmigrated schema) or SQLite, with
/// these extra variables, counting host calls or not.
struct Serve<'a> {
    postgres: bool,
    extra: &'a [(&'a str, String)],
    count_host_calls: bool,
}

impl Serve<'_> {
    /// `None` when PostgreSQL tests are skipped.
    async fn start(self) -> Option<Served> {
        let dir = temp_dir("spin-behaviour");
        let mut variables: Vec<(String, String)> = vec![("jwt_secret".into(), SECRET.into())];
        let schema = if self.postgres {
            let schema = PgSchema::create("behaviour").await?;
            variables.push(("database_url".into(), schema.component_url()));
            variables.push(("database_host".into(), schema.database_host()));
            Some(schema)
        } else {
            None
        };
        variables.extend(self.extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let log = LogCapture::new();
        let host = Host::builder()
            .wasm(spin_test_host::build_component())
            .process_env(false)
            .variables(variables)
            .sqlite_dir(dir.path())
            .log_sink(log.sink())
            .count_host_calls(self.count_host_calls)
            .build()
            .expect("the host starts");
        let running = host.serve("127.0.0.1:0").await.expect("the host listens");
        Some(Served {
            running,
            _host: host,
            _dir: dir,
            _schema: schema,
            log,
        })
    }
}

/// The component on SQLite with `extra` settings, not counting host calls.
async fn on_sqlite_with(extra: &[(&str, String)]) -> Served {
    let serve = Serve {
        postgres: false,
        extra,
        count_host_calls: false,
    };
    serve
        .start()
        .await
        .expect("SQLite needs no database server")
}

fn token(sub: &str) -> String {
    let claims = Claims::create(Duration::from_hours(1)).with_subject(sub);
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing")
}

/// Sends `method path` as `user` (none when `None`) with an optional JSON body and extra
/// headers.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    user: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(user) = user {
        request = request.header("authorization", format!("Bearer {}", token(user)));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    spin_test_host::client::send(addr, request.body(body).unwrap())
        .await
        .expect("the host answers")
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_postgres_database_serves_every_route_without_an_empty_query() {
    let Some(served) = (Serve {
        postgres: true,
        extra: &[],
        count_host_calls: false,
    })
    .start()
    .await
    else {
        return;
    };
    let addr = served.running.addr;
    // The first request migrates the fresh schema (on Spin 4.0.x its empty
    // `schema_migrations` once hung it for ever, holding the migration lock).
    let created = call(
        addr,
        "POST",
        "/api/tasks",
        Some("ann"),
        Some(json!({"title": "a"})),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = json_of(&created)["data"]["id"].as_i64().unwrap();
    let deleted = call(
        addr,
        "POST",
        "/api/tasks",
        Some("ann"),
        Some(json!({"title": "b"})),
        &[],
    )
    .await;
    let deleted_id = json_of(&deleted)["data"]["id"].as_i64().unwrap();
    assert_eq!(
        call(
            addr,
            "DELETE",
            &format!("/api/tasks/{deleted_id}"),
            Some("ann"),
            None,
            &[]
        )
        .await
        .status,
        204
    );
    // A missing task, someone else's task and one deleted a moment ago: every statement
    // that finds nothing still returns a row to the host.
    for path in [
        "/api/tasks/999999".to_owned(),
        format!("/api/tasks/{id}"),
        format!("/api/tasks/{deleted_id}"),
    ] {
        let user = if path.ends_with(&id.to_string()) {
            "bob"
        } else {
            "ann"
        };
        for (method, body) in [
            ("GET", None),
            ("PUT", Some(json!({"title": "x", "completed": false}))),
            ("PATCH", Some(json!({"title": "x"}))),
            ("PATCH", None),
            ("DELETE", None),
        ] {
            let path = if method == "PATCH" && body.is_none() {
                format!("{path}/complete")
            } else {
                path.clone()
            };
            let r = call(
                addr,
                method,
                &path,
                Some(user),
                body,
                &[("if-match", "\"v1\"")],
            )
            .await;
            assert_eq!(r.status, 404, "{method} {path} as {user}: {}", r.text());
        }
    }
    let empty = call(
        addr,
        "GET",
        "/api/tasks?status=completed",
        Some("bob"),
        None,
        &[],
    )
    .await;
    assert_eq!(empty.status, 200);
    assert_eq!(json_of(&empty)["data"], json!([]));
    let ready = call(addr, "GET", "/health/ready", None, None, &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(
        served.running.strict_violations(),
        0,
        "{}",
        served.log.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_to_a_self_signed_server_is_a_configuration_error_naming_database_url() {
    let Some(schema) = PgSchema::create("behaviourtls").await else {
        return;
    };
    // The URL as a user would first write it: no sslmode, so TLS (`prefer`) and a verified
    // certificate, which the local server's self-signed one fails.
    let extra = [
        ("database_url", with_sslmode(&schema.component_url(), None)),
        ("database_host", schema.database_host()),
    ];
    let served = on_sqlite_with(&extra).await;
    let addr = served.running.addr;
    for (method, path, user) in [
        ("GET", "/api/tasks", Some("ann")),
        ("POST", "/api/tasks", Some("ann")),
        ("GET", "/health/ready", None),
    ] {
        let body = (method == "POST").then(|| json!({"title": "x"}));
        let r = call(addr, method, path, user, body, &[]).await;
        assert_eq!(r.status, 500, "{method} {path}: {}", r.text());
        assert_eq!(r.header("retry-after"), None, "a 500 invites no retry");
        let problem = json_of(&r);
        assert_eq!(problem["code"], "configuration_error", "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("database_url"), "{detail}");
        assert!(detail.contains("sslmode=disable"), "{detail}");
    }
    assert_eq!(
        call(addr, "GET", "/health", None, None, &[]).await.status,
        200
    );
    // The same server with `sslmode=disable` works.
    let plain = [
        ("database_url", schema.component_url()),
        ("database_host", schema.database_host()),
    ];
    let served = on_sqlite_with(&plain).await;
    let r = call(
        served.running.addr,
        "GET",
        "/api/tasks",
        Some("ann"),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_write_whole_json_log_lines_one_write_each() {
    let served = (Serve {
        postgres: false,
        extra: &[],
        count_host_calls: false,
    })
    .start()
    .await
    .unwrap();
    let addr = served.running.addr;
    const CLIENTS: usize = 32;
    const EACH: usize = 8;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        clients.spawn(async move {
            let user = format!("user{c}");
            for i in 0..EACH {
                let r = match i % 4 {
                    0 => {
                        call(
                            addr,
                            "POST",
                            "/api/tasks",
                            Some(&user),
                            Some(json!({"title": "t"})),
                            &[],
                        )
                        .await
                    }
                    1 => call(addr, "GET", "/api/tasks?limit=20", Some(&user), None, &[]).await,
                    2 => call(addr, "GET", "/api/tasks/999999", Some(&user), None, &[]).await,
                    _ => call(addr, "GET", "/api/tasks", None, None, &[]).await,
                };
                assert!(r.status < 500, "{}", r.text());
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let text = served.log.text();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line:?}"));
        assert!(parsed["status"].is_u64(), "{parsed}");
    }
    assert_eq!(lines.len(), CLIENTS * EACH, "one line per request");
    assert_eq!(
        served.log.writes(),
        (CLIENTS * EACH) as u64,
        "one write per line"
    );
}

/// The host calls of one request.
async fn calls_of(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> HostCalls {
    let r = call(addr, method, path, Some("budget"), body, headers).await;
    assert!(r.status < 300, "{method} {path}: {}", r.text());
    r.host_calls().expect("the host counts calls")
}

/// The budget of the two hottest routes: one statement, one log write, the six settings
/// they use (four JWT settings, two database settings; the CORS origins too when the
/// request has an `Origin`), no key-value and no outbound HTTP.
fn assert_within_budget(calls: HostCalls, postgres: bool, variables: u32, what: &str) {
    let statements = if postgres {
        calls.pg_query + calls.pg_execute
    } else {
        calls.sqlite_execute
    };
    assert_eq!(statements, 1, "{what}: {calls:?}");
    assert_eq!(calls.stderr, 1, "{what}: {calls:?}");
    assert_eq!(calls.stdout, 0, "{what}: {calls:?}");
    assert_eq!(calls.variables, variables, "{what}: {calls:?}");
    assert_eq!(calls.kv, 0, "{what}: {calls:?}");
    assert_eq!(calls.http, 0, "{what}: {calls:?}");
}

async fn list_and_create_stay_within_their_host_call_budgets(postgres: bool) {
    let Some(served) = (Serve {
        postgres,
        extra: &[("cors_origins", "https://app.example".to_owned())],
        count_host_calls: true,
    })
    .start()
    .await
    else {
        return;
    };
    let addr = served.running.addr;
    // Migrate and seed first: the budgets are for a database in use.
    for i in 0..25 {
        calls_of(
            addr,
            "POST",
            "/api/tasks",
            Some(json!({"title": format!("t{i}")})),
            &[],
        )
        .await;
    }
    let create = calls_of(
        addr,
        "POST",
        "/api/tasks",
        Some(json!({"title": "one more"})),
        &[],
    )
    .await;
    assert_within_budget(create, postgres, 6, "create");
    let list = calls_of(addr, "GET", "/api/tasks?limit=20", None, &[]).await;
    assert_within_budget(list, postgres, 6, "list-20");
    let origin = [("origin", "https://app.example")];
    let browser = calls_of(addr, "GET", "/api/tasks?limit=20", None, &origin).await;
    assert_within_budget(browser, postgres, 7, "list-20 with an Origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_create_stay_within_their_host_call_budgets_on_sqlite() {
    list_and_create_stay_within_their_host_call_budgets(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_create_stay_within_their_host_call_budgets_on_postgres() {
    list_and_create_stay_within_their_host_call_budgets(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_database_address_never_puts_its_password_in_a_log_line() {
    // Spin 3.0 to 3.3 refuse an address that allowed_outbound_hosts does not list with the
    // whole connection string, password included; /health/ready, which needs no token and
    // which probes poll, reaches it.
    let dir = temp_dir("spin-behaviour-refused");
    let log = LogCapture::new();
    let host = Host::builder()
        .wasm(spin_test_host::build_component())
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variable(
            "database_url",
            "postgres://ann:hunter2-secret@db.internal.example:5432/tasks?sslmode=disable",
        )
        .sqlite_dir(dir.path())
        .log_sink(log.sink())
        .pg_refusal_text(spin_test_host::RefusalText::WholeAddress)
        .build()
        .expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    for (path, user) in [("/health/ready", None), ("/api/tasks", Some("ann"))] {
        let r = call(running.addr, "GET", path, user, None, &[]).await;
        assert_eq!(r.status, 500, "{path}: {}", r.text());
        let problem = json_of(&r);
        assert_eq!(problem["code"], "configuration_error", "{problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("database_host")
        );
        assert!(!r.text().contains("hunter2"), "{}", r.text());
    }
    let text = log.text();
    assert!(
        text.contains("is not permitted"),
        "the cause is logged: {text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_without_an_audience_is_a_warning_in_the_readiness_log_line() {
    let extra = [
        (
            "jwt_jwks_url",
            "https://id.example/api/auth/jwks".to_owned(),
        ),
        ("jwks_host", "https://id.example".to_owned()),
    ];
    let served = on_sqlite_with(&extra).await;
    let ready = call(served.running.addr, "GET", "/health/ready", None, None, &[]).await;
    assert_eq!(ready.status, 200, "{}", ready.text());
    let text = served.log.text();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "warn", "{line}");
    assert!(
        line["warnings"][0]
            .as_str()
            .unwrap()
            .contains("jwt_audience"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_or_role_that_does_not_exist_is_a_configuration_error_not_a_503() {
    // The server's reason comes on the later lines of Spin's error chain; the first line is
    // only "db error".
    let Some(schema) = PgSchema::create("behaviournodb").await else {
        return;
    };
    let host = schema.database_host();
    for url in [
        format!("postgres://postgres@{host}/no_such_database_here?sslmode=disable"),
        format!("postgres://no_such_role_here@{host}/test?sslmode=disable"),
    ] {
        let extra = [
            ("database_url", url.clone()),
            ("database_host", host.clone()),
        ];
        let served = on_sqlite_with(&extra).await;
        let r = call(
            served.running.addr,
            "GET",
            "/api/tasks",
            Some("ann"),
            None,
            &[],
        )
        .await;
        assert_eq!(r.status, 500, "{url}: {}", r.text());
        let problem = json_of(&r);
        assert_eq!(problem["code"], "configuration_error", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("database_url"));
        assert!(
            served.log.text().contains("does not exist"),
            "{}",
            served.log.text()
        );
    }
}
