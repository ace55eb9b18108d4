//! Load benchmark: the served `.wasm` against the same SQL run directly.
//!
//! 32 clients, each on its own keep-alive connection, drive the component (served by the
//! test host, one fresh instance per request, on PostgreSQL) for a fixed time, first with
//! `GET /api/tasks?limit=20` and then with `POST /api/tasks`. Then 32 tokio-postgres
//! connections run the very statements the component's store sends for those two
//! operations (`task_api_core::sql::list_statement` / `insert_statement`), for the same
//! time, on the same database. It prints requests/s, p50 and p99 for each, and the ratio
//! component ÷ direct, which is the figure that matters: what the HTTP layer, the Wasm
//! instance per request, the core and Spin's Postgres interface cost over the SQL itself.
//!
//! The same two operations then run against the component on SQLite (a fresh file, in WAL
//! mode once migrated).
//!
//! On each store, creates run twice: all 32 clients as one user (`create`), then each
//! client as a user of its own (`create-users`). One user's writes take their change-feed
//! numbers one at a time (docs/sync.md), so the first is the worst case of a single user's
//! burst, and the second the load of many users.
//!
//! Then against the native server that links the same core (`examples/axum-server`, in
//! this process), on PostgreSQL and on SQLite, with the ratio native ÷ component: what the
//! Wasm instance per request and Spin's interfaces cost over a native host of the core.
//!
//! Before any load, it prints the component's size and, for each store and route, the host
//! calls one request makes by kind (the test host's `x-host-calls`), and checks the budgets
//! of the two hot routes: one database statement, one log write, no key-value call, no
//! outbound HTTP, and only the six variables they use. Over budget, it fails.
//!
//! With `LOAD_BASELINE_WASM=<path to an older task_api_spin.wasm>`, every component figure is
//! measured for that build too, phase by phase in the same run, with the ratio new ÷ old.
//!
//! ```text
//! cargo bench -p spin-test-host --bench load            # LOAD_SECS=10 by default
//! LOAD_SECS=5 LOAD_CLIENTS=32 cargo bench -p spin-test-host --bench load
//! LOAD_BASELINE_WASM=/tmp/old.wasm LOAD_SECS=6 cargo bench -p spin-test-host --bench load
//! ```
//!
//! It needs PostgreSQL (`TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test?sslmode=disable`) and works in fresh schemas that
//! it drops at the end.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full};
use jwt_simple::prelude::{Claims, HS256Key, MACLike};
use std::path::{Path, PathBuf};

use spin_test_host::{Host, LogSink, RunningHost};
use task_api_core::sql::{Dialect, SqlValue, insert_statement, list_statement};
use task_api_core::{ListQuery, NewTask, TaskId, Timestamp, Title, UserId};
use task_api_test_kit::{TempDir, postgres::PgSchema, postgres::database_url, temp_dir};
use tokio_postgres::types::{ToSql, Type};
use wasmtime_wasi_http::io::TokioIo;

const SECRET: &str = "a load-benchmark secret that is over thirty-two bytes";
const USER: &str = "load-user";
/// Tasks the user holds before the list phase, so that every list returns 20.
const SEEDED: usize = 100;

/// What one phase measured.
struct Measured {
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn from(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Measured {
            requests: latencies.len(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn token() -> String {
    token_of(USER)
}

fn token_of(user: &str) -> String {
    let claims = Claims::create(jwt_simple::prelude::Duration::from_hours(2)).with_subject(user);
    HS256Key::from_bytes(SECRET.as_bytes())
        .authenticate(claims)
        .expect("signing")
}

/// A request builder for the `n`-th call of worker `w`.
type MakeRequest = Arc<dyn Fn(u64, u64) -> Request<Full<Bytes>> + Send + Sync>;
/// A statement builder for the `n`-th call of worker `w`.
type MakeStatement = Arc<dyn Fn(u64, u64) -> (String, Vec<SqlValue>) + Send + Sync>;

/// Runs `clients` workers started by `spawn(worker)` and gathers their latencies.
async fn phase(
    clients: u64,
    spawn: impl Fn(u64) -> tokio::task::JoinHandle<Vec<Duration>>,
) -> Measured {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients).map(spawn).collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("a worker"));
    }
    Measured::from(all, started.elapsed())
}

/// A keep-alive HTTP/1.1 connection to the host.
async fn http_connection(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    sender
}

/// One client of the component on one keep-alive connection, until `deadline`.
async fn http_worker(
    addr: SocketAddr,
    w: u64,
    deadline: Instant,
    make: MakeRequest,
    expected: u16,
) -> Vec<Duration> {
    let mut sender = http_connection(addr).await;
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let request = make(w, n);
        let t = Instant::now();
        http_call(&mut sender, request, expected).await;
        latencies.push(t.elapsed());
        n += 1;
    }
    latencies
}

/// One client of PostgreSQL on its own connection, until `deadline`.
async fn pg_worker(
    url: String,
    schema: String,
    w: u64,
    deadline: Instant,
    make: MakeStatement,
) -> Vec<Duration> {
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("SET search_path TO {schema}"))
        .await
        .expect("search_path");
    let mut prepared = HashMap::new();
    let mut latencies = Vec::new();
    let mut n = 0;
    while Instant::now() < deadline {
        let statement = make(w, n);
        let t = Instant::now();
        pg_run(&client, &mut prepared, statement).await;
        latencies.push(t.elapsed());
        n += 1;
    }
    latencies
}

async fn http_call(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    expected: u16,
) {
    sender.ready().await.expect("connection ready");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("a body");
    assert_eq!(status, expected, "{:?}", body.to_bytes());
}

/// Binds the core's values by the types PostgreSQL prepared for the statement.
fn bind(types: &[Type], params: &[SqlValue]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    types
        .iter()
        .zip(params)
        .map(|(ty, v)| -> Box<dyn ToSql + Sync + Send> {
            match (v, ty) {
                (SqlValue::Null, &Type::INT8) => Box::new(None::<i64>),
                (SqlValue::Null, &Type::BOOL) => Box::new(None::<bool>),
                (SqlValue::Null, _) => Box::new(None::<String>),
                (SqlValue::Int(n), _) => Box::new(*n),
                (SqlValue::Text(s), _) => Box::new(s.clone()),
                (SqlValue::Bool(b), _) => Box::new(*b),
            }
        })
        .collect()
}

/// Runs a statement, prepared once per connection as a native app's pool would.
async fn pg_run(
    client: &tokio_postgres::Client,
    prepared: &mut HashMap<String, tokio_postgres::Statement>,
    (sql, params): (String, Vec<SqlValue>),
) {
    let statement = match prepared.get(&sql) {
        Some(s) => s.clone(),
        None => {
            let s = client.prepare(&sql).await.expect("prepare");
            prepared.insert(sql, s.clone());
            s
        }
    };
    let values = bind(statement.params(), &params);
    let refs: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref() as _).collect();
    client.query(&statement, &refs).await.expect("query");
}

/// The routes whose host calls are printed, with the budgets of the hot ones.
const ROUTES: [(&str, &str, &str, Option<u32>); 5] = [
    ("list-20", "GET", "/api/tasks?limit=20", Some(6)),
    ("create", "POST", "/api/tasks", Some(6)),
    ("list+Origin", "GET", "/api/tasks?limit=20", Some(7)),
    ("get 404", "GET", "/api/tasks/999999999", None),
    ("health", "GET", "/health", None),
];

/// A component served on one store, with what must live as long as it.
struct Served {
    running: RunningHost,
    _host: Host,
    _dir: TempDir,
    _schema: Option<PgSchema>,
}

/// Serves `wasm` on PostgreSQL (a fresh schema) or SQLite (a fresh file).
async fn serve(wasm: &Path, postgres: bool, clients: u64, count_host_calls: bool) -> Served {
    let dir = temp_dir("load");
    let mut builder = Host::builder()
        .wasm(wasm)
        .process_env(false)
        .variable("jwt_secret", SECRET)
        .variable("cors_origins", "https://app.example")
        .sqlite_dir(dir.path())
        .count_host_calls(count_host_calls)
        // The tests hold the current build to strict mode; a baseline build from before
        // the zero-row guard must still migrate its fresh schema here.
        .strict_postgres(false)
        // The component's log lines are dropped: writing tens of thousands a second to a
        // terminal would measure the terminal.
        .log_sink(LogSink::new(|_| {}))
        .max_instances(u32::try_from(clients * 2).unwrap_or(64));
    let schema = if postgres {
        let schema = PgSchema::create("load")
            .await
            .expect("PostgreSQL for the benchmark");
        builder = builder
            .variable("database_url", schema.component_url())
            .variable("database_host", schema.database_host());
        Some(schema)
    } else {
        None
    };
    let host = builder.build().expect("the host starts");
    let running = host.serve("127.0.0.1:0").await.expect("the host listens");
    // Seed through the component (which also applies the migrations).
    let mut seeder = http_connection(running.addr).await;
    let create = create_request(running.addr);
    for n in 0..SEEDED as u64 {
        http_call(&mut seeder, create(u64::MAX, n), 201).await;
    }
    Served {
        running,
        _host: host,
        _dir: dir,
        _schema: schema,
    }
}

/// The native server (`task-api-axum`) on PostgreSQL (a fresh schema) or SQLite (a fresh
/// file), in this process, seeded like [`serve`]; stopped when the sender is dropped.
async fn serve_native(
    postgres: bool,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    TempDir,
    Option<PgSchema>,
) {
    let dir = temp_dir("load-native");
    let schema = if postgres {
        Some(
            PgSchema::create("loadnative")
                .await
                .expect("PostgreSQL for the benchmark"),
        )
    } else {
        None
    };
    let (url, sqlite) = (
        schema.as_ref().map(PgSchema::component_url),
        dir.path().join("native.sqlite"),
    );
    let settings = task_api_axum::Settings::from_lookup(|name| match name {
        "jwt_secret" => Some(SECRET.into()),
        "cors_origins" => Some("https://app.example".into()),
        "database_url" => url.clone(),
        "sqlite_path" => Some(sqlite.display().to_string()),
        _ => None,
    })
    .expect("the native server's settings");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("the address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(task_api_axum::serve_until(listener, settings, async {
        let _ = stopped.await;
    }));
    let mut seeder = http_connection(addr).await;
    let create = create_request(addr);
    for n in 0..SEEDED as u64 {
        http_call(&mut seeder, create(u64::MAX, n), 201).await;
    }
    (addr, stop, dir, schema)
}

fn list_request(addr: SocketAddr) -> MakeRequest {
    let auth = format!("Bearer {}", token());
    Arc::new(move |_, _| {
        Request::get("/api/tasks?limit=20")
            .header("host", addr.to_string())
            .header("authorization", auth.as_str())
            .body(Full::new(Bytes::new()))
            .unwrap()
    })
}

/// Creates as a user of each client's own (`load-user-<w>`).
fn create_request_per_client(addr: SocketAddr, clients: u64) -> MakeRequest {
    let auths: Vec<String> = (0..clients)
        .map(|w| format!("Bearer {}", token_of(&format!("{USER}-{w}"))))
        .collect();
    Arc::new(move |w, n| {
        Request::post("/api/tasks")
            .header("host", addr.to_string())
            .header("authorization", auths[w as usize % auths.len()].as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"title":"load {w}-{n}","priority":"low"}}"#
            ))))
            .unwrap()
    })
}

fn create_request(addr: SocketAddr) -> MakeRequest {
    let auth = format!("Bearer {}", token());
    Arc::new(move |w, n| {
        Request::post("/api/tasks")
            .header("host", addr.to_string())
            .header("authorization", auth.as_str())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(format!(
                r#"{{"title":"load {w}-{n}","priority":"low"}}"#
            ))))
            .unwrap()
    })
}

/// Prints one request's host calls per route on each store, and returns the budget
/// overruns of `wasm` (none expected of the current build).
async fn host_calls(label: &str, wasm: &Path) -> Vec<String> {
    let mut over = Vec::new();
    for postgres in [false, true] {
        let store = if postgres { "PostgreSQL" } else { "SQLite" };
        let served = serve(wasm, postgres, 1, true).await;
        for (name, method, path, budget) in ROUTES {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {}", token()));
            let body = if method == "POST" {
                request = request.header("content-type", "application/json");
                br#"{"title":"counted"}"#.to_vec()
            } else {
                Vec::new()
            };
            if name.contains("Origin") {
                request = request.header("origin", "https://app.example");
            }
            let response = served
                .running
                .send(request.body(body).unwrap())
                .await
                .expect("a response");
            let calls = response.host_calls().expect("counted host calls");
            println!("  {label:<8} {store:<10} {name:<12} {calls}");
            let Some(variables) = budget else { continue };
            let statements = calls.pg_query + calls.pg_execute + calls.sqlite_execute;
            if statements != 1
                || calls.stderr != 1
                || calls.kv != 0
                || calls.http != 0
                || calls.variables > variables
            {
                over.push(format!(
                    "{label} {store} {name}: {calls} (budget: 1 statement, 1 stderr write, \
                     0 kv, 0 http, at most {variables} variables)"
                ));
            }
        }
        served.running.shutdown().await;
    }
    over
}

fn size_of(wasm: &Path) -> u64 {
    std::fs::metadata(wasm).map(|m| m.len()).unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; this benchmark takes no arguments of its own.
    let secs = env_number("LOAD_SECS", 10);
    let clients = env_number("LOAD_CLIENTS", 32);
    let current = spin_test_host::build_component();
    let baseline = std::env::var_os("LOAD_BASELINE_WASM").map(PathBuf::from);
    let mut builds = vec![("current", current.clone())];
    builds.extend(baseline.map(|b| ("baseline", b)));

    println!(
        "load: {clients} clients, {secs} s per phase; components served by spin-test-host ({} build), one instance per request",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    for (label, wasm) in &builds {
        println!("component size ({label}): {} bytes", size_of(wasm));
    }
    println!("host calls of one request:");
    let mut over = Vec::new();
    for (label, wasm) in &builds {
        let overruns = host_calls(label, wasm).await;
        if *label == "current" {
            over = overruns;
        }
    }

    let over_http = |addr: SocketAddr, make: MakeRequest, expected: u16| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        phase(clients, move |w| {
            tokio::spawn(http_worker(addr, w, deadline, make.clone(), expected))
        })
    };
    let user = UserId::parse(USER).expect("a user id");
    let query = ListQuery::parse("limit=20").expect("a query");
    let list_sql: MakeStatement = {
        let user = user.clone();
        Arc::new(move |_, _| list_statement(Dialect::Postgres, &user, &query))
    };
    let insert_sql: MakeStatement = Arc::new(move |w, n| {
        let title = Title::parse(&format!("direct {w}-{n}")).expect("a title");
        let now = Timestamp::from_system_time(std::time::SystemTime::now());
        insert_statement(
            Dialect::Postgres,
            &user,
            &NewTask::new(title),
            TaskId::fresh(),
            now,
        )
    });
    let url = database_url();

    // PostgreSQL: each build, then the same statements directly, on the same schema.
    let mut figures: Vec<(String, Measured)> = Vec::new();
    let direct_schema = PgSchema::create("loaddirect")
        .await
        .expect("PostgreSQL for the benchmark");
    {
        // The direct phases need the tables: migrate their schema with the core's runner.
        let exec = task_api_core::sql::migrate(
            &DirectExecutor::connect(&url, direct_schema.name()).await,
            Dialect::Postgres,
        )
        .await;
        exec.expect("migrations");
    }
    // Each build on one store: list-20, then create.
    let on = |postgres: bool| {
        let (builds, over_http) = (&builds, &over_http);
        async move {
            let store = if postgres { "pg" } else { "sqlite" };
            let mut measured = Vec::new();
            for (label, wasm) in builds {
                let served = serve(wasm, postgres, clients, false).await;
                let addr = served.running.addr;
                let list = over_http(addr, list_request(addr), 200).await;
                measured.push((format!("{store} list-20 {label}"), list));
                let create = over_http(addr, create_request(addr), 201).await;
                measured.push((format!("{store} create {label}"), create));
                let users = create_request_per_client(addr, clients);
                let create_users = over_http(addr, users, 201).await;
                measured.push((format!("{store} create-users {label}"), create_users));
                served.running.shutdown().await;
            }
            measured
        }
    };
    figures.extend(on(true).await);
    let direct = |make: &MakeStatement| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let (make, url, name) = (make.clone(), url.clone(), direct_schema.name().to_owned());
        phase(clients, move |w| {
            tokio::spawn(pg_worker(
                url.clone(),
                name.clone(),
                w,
                deadline,
                make.clone(),
            ))
        })
    };
    let list_direct = direct(&list_sql).await;
    let create_direct = direct(&insert_sql).await;
    figures.extend(on(false).await);
    // The native server (task-api-axum) on each store: list-20, then create.
    for postgres in [true, false] {
        let store = if postgres { "pg" } else { "sqlite" };
        let (addr, stop, _dir, _schema) = serve_native(postgres).await;
        let list = over_http(addr, list_request(addr), 200).await;
        figures.push((format!("{store} list-20 native"), list));
        let create = over_http(addr, create_request(addr), 201).await;
        figures.push((format!("{store} create native"), create));
        drop(stop);
    }

    println!("throughput:");
    for (name, measured) in &figures {
        line(name, measured);
    }
    line("pg list-20 direct SQL", &list_direct);
    line("pg create direct SQL", &create_direct);
    let rate = |name: &str| {
        figures
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m.rate())
    };
    println!("ratios:");
    for (op, direct) in [("list-20", &list_direct), ("create", &create_direct)] {
        if let Some(r) = rate(&format!("pg {op} current")) {
            println!(
                "  pg {op:<8} component ÷ direct SQL {:>6.1}%",
                100.0 * r / direct.rate()
            );
        }
    }
    for store in ["pg", "sqlite"] {
        for op in ["list-20", "create"] {
            if let (Some(native), Some(component)) = (
                rate(&format!("{store} {op} native")),
                rate(&format!("{store} {op} current")),
            ) {
                println!(
                    "  {store:<6} {op:<8} native ÷ component {:>6.2}",
                    native / component
                );
            }
        }
    }
    for store in ["pg", "sqlite"] {
        for op in ["list-20", "create", "create-users"] {
            if let (Some(new), Some(old)) = (
                rate(&format!("{store} {op} current")),
                rate(&format!("{store} {op} baseline")),
            ) {
                println!("  {store:<6} {op:<8} current ÷ baseline {:>6.2}", new / old);
            }
        }
    }
    if !over.is_empty() {
        for o in &over {
            eprintln!("over budget: {o}");
        }
        std::process::exit(1);
    }
}

fn line(name: &str, m: &Measured) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "  {name:<28} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests)",
        m.rate(),
        ms(m.p50),
        ms(m.p99),
        m.requests
    );
}

/// A plain tokio-postgres connection used to migrate the direct phases' schema.
struct DirectExecutor(tokio_postgres::Client);

impl DirectExecutor {
    async fn connect(url: &str, schema: &str) -> DirectExecutor {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .await
            .expect("search_path");
        DirectExecutor(client)
    }
}

impl task_api_core::sql::Executor for DirectExecutor {
    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, task_api_core::sql::DbError> {
        assert!(params.is_empty(), "migrations bind nothing");
        let rows = self
            .0
            .simple_query(sql)
            .await
            .map_err(|e| task_api_core::sql::DbError::Other(e.to_string()))?;
        Ok(rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| SqlValue::Text(r.get(i).unwrap_or_default().to_owned()))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<u64, task_api_core::sql::DbError> {
        assert!(params.is_empty(), "migrations bind nothing");
        self.0
            .batch_execute(sql)
            .await
            .map(|_| 0)
            .map_err(|e| task_api_core::sql::DbError::Other(e.to_string()))
    }
}
